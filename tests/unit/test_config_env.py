"""``${NAME}`` only where a secret or an address goes, and never a value in a message
(issue 29, item 4). Config files in a temp dir; no sockets."""
import pytest

from ccgate.config.load import ConfigError, load_config
from ccgate.config.edits import EditRefused, add_tenant, patch_tenant, patch_upstream
from tests.helpers import write_config

SECRET = "hunter2-the-admin-password-value"
UP = [{"id": "u", "url": "https://mirror.example/api", "key": "${UP_KEY}"}]


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.setenv("SECRET_VAR", SECRET)
    monkeypatch.setenv("UP_KEY", "sk-ant-real-key-from-env-123")
    monkeypatch.setenv("BAD_URL", "ftp://" + SECRET)
    monkeypatch.setenv("V1_URL", "https://" + SECRET + ".example/v1")


def lines(tmp_path, **files) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(write_config(tmp_path, **files))
    return e.value.lines


@pytest.mark.parametrize("tenant,path", [
    ({"name": "${SECRET_VAR}"}, "tenants[0].name"),
    ({"limits": {"daily": {"maxUSD": "${SECRET_VAR}"}}}, "tenants[0].limits.daily.maxUSD"),
    ({"allowedModels": ["${SECRET_VAR}"]}, "tenants[0].allowedModels[0]"),
])
def test_a_reference_outside_secret_fields_is_an_error_naming_the_variable(tmp_path, tenant, path):
    found = lines(tmp_path, upstreams=UP, tenants=[{"id": "t", "key": "sk-ccg-0123456789abcdef",
                                                     **tenant}])
    assert found[0].startswith(f"tenants.json: {path}: ${{SECRET_VAR}} is read from")
    assert "only in key, URL, token and password fields" in found[0]
    assert SECRET not in "\n".join(found)


def test_references_in_keys_and_urls_still_work(tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path, UP, server={"admin": {
        "enabled": True, "username": "${SECRET_VAR}", "password": "${SECRET_VAR}"}}))
    assert config.upstreams[0].key == "sk-ant-real-key-from-env-123"
    assert config.admin.password == SECRET


def test_a_bad_value_from_the_environment_is_never_shown(tmp_path):
    found = lines(tmp_path, upstreams=[{"id": "u", "url": "${BAD_URL}", "key": "k"}])
    assert found[0].startswith("upstreams.json: upstreams[0].url: not valid here (pattern")
    assert "${BAD_URL}" in found[0] and SECRET not in "\n".join(found)
    config = load_config(write_config(tmp_path, [{"id": "u", "url": "${V1_URL}", "key": "k"}]))
    assert config.problems and SECRET not in "\n".join(config.problems)


@pytest.mark.parametrize("edit", [
    lambda doc: add_tenant(doc, {"id": "x", "name": "${SECRET_VAR}"}, "sha256:" + "0" * 64, "t"),
    lambda doc: patch_tenant(doc, "t", {"limits": {"daily": {"maxUSD": "${SECRET_VAR}"}}}, "t"),
    lambda doc: patch_tenant(doc, "t", {"modelRewrite": {"${X}": "claude"}}, "t"),
    lambda doc: patch_upstream(doc, "u", {"key": "${SECRET_VAR}"}, "t"),
])
def test_the_console_refuses_references(edit):
    doc = {"tenants": [{"id": "t"}], "upstreams": [{"id": "u", "key": "${UP_KEY}"}]}
    with pytest.raises(EditRefused) as e:
        edit(doc)
    assert e.value.status == 400 and "not accepted from the console" in e.value.message


def test_the_console_may_send_back_a_reference_the_file_holds():
    doc = {"upstreams": [{"id": "u", "key": "${UP_KEY}", "weight": 1}]}
    _, changed = patch_upstream(doc, "u", {"key": "${UP_KEY}", "weight": 2}, "t")
    assert changed == ["weight"] and doc["upstreams"][0]["key"] == "${UP_KEY}"


def test_short_keys_are_a_problem_and_no_key_is_ever_echoed(tmp_path):
    """Issue 32: validation errors printed the key; keys of 8 characters were accepted."""
    from ccgate.config.load import load_config
    config = load_config(write_config(tmp_path / "a", UP, tenants=[
        {"id": "t", "key": "sk-short-1234"}]))
    assert any("tenants[0].key: shorter than 16" in p for p in config.problems)
    assert "sk-short-1234" not in "\n".join(config.problems)
    found = lines(tmp_path / "b", upstreams=UP, tenants=[{"id": "t", "key": "tiny1"}])
    assert found[0].startswith("tenants.json: tenants[0].key: not valid here (minLength 8)")
    assert "tiny1" not in "\n".join(found)


def test_a_hand_edit_that_keeps_size_and_time_is_not_overwritten(tmp_path, monkeypatch):
    """Issue 32: a hand edit made while a console write was being saved was lost when it left
    the file's size and modification time as they were."""
    import os
    import ccgate.config.files as files
    from ccgate.config.edits import patch_tenant
    from ccgate.config.files import ConfigFiles
    d = write_config(tmp_path, UP, tenants=[{"id": "t", "key": "sk-ccg-0123456789abcdef",
                                             "name": "Aaaa"}])
    path = d / "tenants.json"
    real_load, edited = files.load_config, []

    def load_while_someone_edits(*args, **kwargs):
        if not edited:  # the owner renames Aaaa to Bbbb by hand: same size, same mtime
            st = os.stat(path)
            path.write_text(path.read_text().replace("Aaaa", "Bbbb"))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            edited.append(True)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(files, "load_config", load_while_someone_edits)
    ConfigFiles(d).edit("tenants.json", lambda doc: patch_tenant(doc, "t", {"enabled": False}, "now"))
    tenant = __import__("json").loads(path.read_text())["tenants"][0]
    assert tenant["name"] == "Bbbb" and tenant["enabled"] is False  # both edits kept
