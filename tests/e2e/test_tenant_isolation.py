"""Issue 29, item 2: tenants share one upstream account, so the gateway owns what each creates
there. With the official SDK: tenant B cannot list, read or delete tenant A's file, skill or
batch (404, nothing sent upstream), unknown endpoints such as ``/v1/organizations/*`` never
reach the upstream, and follow-ups go to the upstream that created the object."""
import anthropic
import pytest
import requests

from tests.helpers import OTHER_KEY, TENANT_KEY, upstream_entry
from tests.mock_upstream import ResourceAPI

MODEL = "claude-sonnet-4-5-20250929"
RESOURCES = {"allowFiles": True, "allowSkills": True, "allowBatches": True}
TENANTS = [{"id": "alice", "key": TENANT_KEY, **RESOURCES},
           {"id": "bob", "key": OTHER_KEY, **RESOURCES},
           {"id": "carol", "key": "sk-ccg-test-carol-no-resources-1"}]
BATCH = [{"custom_id": "one", "params": {"model": MODEL, "max_tokens": 10,
                                         "messages": [{"role": "user", "content": "hi"}]}}]


def sdk(gw, key) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=key, max_retries=0)


@pytest.fixture
def shared(make_gateway, upstream):
    upstream.handler = ResourceAPI(upstream)
    return make_gateway([upstream_entry(upstream)], tenants=TENANTS)


def sent(upstream, object_id) -> list[str]:
    return [f"{r.method} {r.path}" for r in upstream.requests if object_id in r.path]


def test_files_are_their_creators_own(shared, upstream):
    alice, bob = sdk(shared, TENANT_KEY), sdk(shared, OTHER_KEY)
    mine = alice.beta.files.upload(file=("notes.txt", b"alice's secret notes", "text/plain"))
    assert [f.id for f in alice.beta.files.list()] == [mine.id]
    assert alice.beta.files.download(mine.id).read() == b"alice's secret notes"
    assert alice.beta.files.retrieve_metadata(mine.id).filename == "notes.txt"
    before = sent(upstream, mine.id)
    assert list(bob.beta.files.list()) == []
    for attempt in (lambda: bob.beta.files.retrieve_metadata(mine.id),
                    lambda: bob.beta.files.download(mine.id).read(),
                    lambda: bob.beta.files.delete(mine.id)):
        with pytest.raises(anthropic.NotFoundError) as e:
            attempt()
        assert e.value.body["error"]["type"] == "not_found_error"
    assert sent(upstream, mine.id) == before  # none of bob's tries reached the upstream
    # naming alice's file in a message is refused the same way
    doc = {"type": "document", "source": {"type": "file", "file_id": mine.id}}
    with pytest.raises(anthropic.NotFoundError):
        bob.beta.messages.create(model=MODEL, max_tokens=10, messages=[
            {"role": "user", "content": [doc, {"type": "text", "text": "summarise"}]}])
    assert alice.beta.messages.create(model=MODEL, max_tokens=10, messages=[
        {"role": "user", "content": [doc, {"type": "text", "text": "summarise"}]}]).content
    alice.beta.files.delete(mine.id)
    assert list(alice.beta.files.list()) == []


def test_skills_and_batches_are_their_creators_own(shared, upstream):
    alice, bob = sdk(shared, TENANT_KEY), sdk(shared, OTHER_KEY)
    skill = alice.beta.skills.create(files=[("mine/SKILL.md", b"# Mine\n", "text/markdown")])
    batch = alice.messages.batches.create(requests=BATCH)
    assert [s.id for s in alice.beta.skills.list()] == [skill.id]
    assert [b.id for b in alice.messages.batches.list()] == [batch.id]
    assert list(bob.beta.skills.list()) == [] and list(bob.messages.batches.list()) == []
    before = len(upstream.requests)
    for attempt in (lambda: bob.beta.skills.retrieve(skill.id),
                    lambda: bob.beta.skills.delete(skill.id),
                    lambda: bob.beta.skills.versions.list(skill.id),
                    lambda: bob.messages.batches.retrieve(batch.id),
                    lambda: list(bob.messages.batches.results(batch.id)),
                    lambda: bob.messages.batches.cancel(batch.id),
                    lambda: bob.messages.batches.delete(batch.id)):
        with pytest.raises(anthropic.NotFoundError):
            attempt()
    assert len(upstream.requests) == before
    assert alice.messages.batches.cancel(batch.id).processing_status == "canceling"
    # the list shows what the gateway last saw of the batch
    assert alice.messages.batches.list().data[0].processing_status == "canceling"
    assert [r.custom_id for r in alice.messages.batches.results(batch.id)] == ["one"]
    assert alice.beta.skills.retrieve(skill.id).id == skill.id


def test_a_tenant_without_the_setting_is_told_which_one(shared, upstream):
    carol = sdk(shared, "sk-ccg-test-carol-no-resources-1")
    for attempt, setting in ((lambda: carol.beta.files.list(), "allowFiles"),
                             (lambda: carol.beta.skills.list(), "allowSkills"),
                             (lambda: carol.messages.batches.create(requests=BATCH),
                              "allowBatches")):
        with pytest.raises(anthropic.PermissionDeniedError) as e:
            attempt()
        assert setting in e.value.body["error"]["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/organizations/users"), ("POST", "/v1/organizations/invites"),
    ("GET", "/v1/organizations/api_keys"), ("GET", "/v1/environments"), ("GET", "/v1/agents"),
    ("DELETE", "/v1/Organizations/workspaces/x"), ("GET", "/v2/anything")])
def test_endpoints_the_gateway_does_not_serve_never_reach_the_upstream(shared, upstream, method,
                                                                       path):
    r = requests.request(method, shared.url + "/anthropic" + path,
                         headers={"x-api-key": TENANT_KEY}, json={})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert upstream.requests == []


def test_allow_paths_opens_a_path_for_one_tenant(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "allowPaths": ["/v1/experimental/*"]},
        {"id": "bob", "key": OTHER_KEY}])
    ask = lambda key: requests.post(gw.url + "/anthropic/v1/experimental/thing",
                                    headers={"x-api-key": key}, json={"x": 1})
    assert ask(OTHER_KEY).status_code == 404 and upstream.requests == []
    assert ask(TENANT_KEY).status_code == 404  # the mock's own 404: it got there
    assert [r.path for r in upstream.requests] == ["/v1/experimental/thing"]


def test_follow_ups_reach_the_upstream_that_created_the_object(make_mock, make_gateway):
    mocks = [make_mock("a"), make_mock("b")]
    for m in mocks:
        m.handler = ResourceAPI(m)
    gw = make_gateway([upstream_entry(m) for m in mocks], tenants=TENANTS)  # round robin
    alice = sdk(gw, TENANT_KEY)
    batch = alice.messages.batches.create(requests=BATCH)
    mine = alice.beta.files.upload(file=("n.txt", b"n", "text/plain"))
    holder = {m.name: m for m in mocks}
    for _ in range(4):  # round robin would alternate: every one lands where the object is
        assert alice.messages.batches.retrieve(batch.id).id == batch.id
        assert [r.custom_id for r in alice.messages.batches.results(batch.id)] == ["one"]
        assert alice.beta.files.download(mine.id).read() == b"n"
        alice.beta.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": mine.id}}]}])
    batch_home = next(m for m in mocks if batch.id in m.handler.objects)
    file_home = next(m for m in mocks if mine.id in m.handler.objects)
    for m in mocks:
        if m is not batch_home:
            assert not sent(m, batch.id)
        if m is not file_home:
            assert not [r for r in m.requests if mine.id.encode() in r.body or mine.id in r.path]
    assert len([r for r in file_home.requests if r.path.endswith("/v1/messages")]) == 4
    assert holder


def test_an_upload_is_limited_by_max_body(make_gateway, upstream):
    upstream.handler = ResourceAPI(upstream)
    gw = make_gateway([upstream_entry(upstream)], tenants=TENANTS,
                      server={"server": {"maxBodyMB": 1}})
    with pytest.raises(anthropic.APIStatusError) as e:
        sdk(gw, TENANT_KEY).beta.files.upload(file=("big.bin", b"x" * (2 << 20), "text/plain"))
    assert e.value.status_code == 413 and upstream.requests == []


def test_owners_are_shared_by_instances_on_redis(make_mock, shared_gateways):
    mock = make_mock("m")
    mock.handler = ResourceAPI(mock)
    gws = [shared_gateways([upstream_entry(mock)], tenants=TENANTS) for _ in range(2)]
    mine = sdk(gws[0], TENANT_KEY).beta.files.upload(file=("a.txt", b"a", "text/plain"))
    assert [f.id for f in sdk(gws[1], TENANT_KEY).beta.files.list()] == [mine.id]
    assert sdk(gws[1], TENANT_KEY).beta.files.download(mine.id).read() == b"a"
    assert list(sdk(gws[1], OTHER_KEY).beta.files.list()) == []
    with pytest.raises(anthropic.NotFoundError):
        sdk(gws[1], OTHER_KEY).beta.files.download(mine.id).read()
    sdk(gws[1], TENANT_KEY).beta.files.delete(mine.id)
    assert list(sdk(gws[0], TENANT_KEY).beta.files.list()) == []


def test_reusing_a_container_by_id_is_refused(shared, upstream):
    """Code-execution containers hold files and outlive a request; every key of the account
    could run in anyone's. The gateway does not own them, so it refuses their reuse."""
    alice = sdk(shared, TENANT_KEY)
    with pytest.raises(anthropic.BadRequestError) as e:
        alice.beta.messages.create(model=MODEL, max_tokens=10, container="container_someones",
                                   messages=[{"role": "user", "content": "ls /tmp"}])
    assert "container" in e.value.body["error"]["message"]
    assert upstream.requests == []
    assert alice.beta.messages.create(model=MODEL, max_tokens=10, messages=[
        {"role": "user", "content": "my Docker container will not start"}]).content


def test_an_escaped_key_cannot_smuggle_someone_elses_file(shared, upstream):
    mine = sdk(shared, TENANT_KEY).beta.files.upload(file=("a.txt", b"a", "text/plain"))
    body = ('{"model": "%s", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": '
            '"document", "source": {"type": "file", "file\\u005fid": "%s"}}]}]}' % (MODEL, mine.id))
    sent = len(upstream.requests)
    r = requests.post(shared.url + "/anthropic/v1/messages", data=body,
                      headers={"x-api-key": OTHER_KEY, "content-type": "application/json"})
    assert r.status_code == 404 and len(upstream.requests) == sent
