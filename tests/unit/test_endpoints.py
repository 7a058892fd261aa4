"""The endpoint table, the ids a body names and the list pages (issue 29, item 2): pure."""
import pytest

from ccgate.resources.endpoints import EndpointRefused, classify
from ccgate.resources.listing import BadListQuery, page
from ccgate.resources.owners import Owned
from ccgate.resources.refs import may_name_objects, named_objects, reused_containers


@pytest.mark.parametrize("method,path,kind,resource,object_id", [
    ("POST", "/v1/messages", "inference", None, None),
    ("POST", "/V1/Messages", "inference", None, None),
    ("POST", "/v1/messages/count_tokens", "free", None, None),
    ("GET", "/v1/models", "free", None, None),
    ("GET", "/v1/files", "list", "files", None),
    ("POST", "/v1/files", "create", "files", None),
    ("GET", "/v1/files/file_AbC/content", "item", "files", "file_AbC"),  # id keeps its case
    ("DELETE", "/v1/files/file_AbC", "delete", "files", "file_AbC"),
    ("POST", "/v1/messages/batches/msgbatch_1/cancel", "item", "batches", "msgbatch_1"),
    ("GET", "/v1/skills/skill_1/versions/17", "item", "skills", "skill_1"),
])
def test_classify(method, path, kind, resource, object_id):
    endpoint = classify(method, path)
    assert (endpoint.kind, endpoint.resource, endpoint.object_id) == (kind, resource, object_id)


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/v1/messages", 405), ("PUT", "/v1/files", 405), ("GET", "/v1/organizations/users", 404),
    ("GET", "/v1/files/a/b", 404), ("GET", "/v1", 404), ("POST", "/v1/agents", 404)])
def test_refused(method, path, status):
    with pytest.raises(EndpointRefused) as e:
        classify(method, path)
    assert e.value.status == status


def test_named_objects():
    doc = {"messages": [{"content": [
        {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "image", "source": {"type": "file", "file_id": "file_2"}},
        {"type": "container_upload", "file_id": "file_3"},
        # a tool's own arguments name nothing upstream (a Google Drive MCP tool, say)
        {"type": "tool_use", "id": "t", "name": "drive", "input": {
            "file_id": "1AbC", "source": {"type": "file", "file_id": "x"}}},
        {"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "document", "source": {"type": "file", "file_id": "file_4"}}]}]}],
        "tools": [{"name": "drive", "input_schema": {"properties": {"file_id": {"type": "string"}}}}],
        "container": {"skills": [{"type": "custom", "skill_id": "skill_9", "version": "1"},
                                 {"type": "anthropic", "skill_id": "pptx"}]}}
    assert sorted(named_objects(doc)) == [("files", "file_1"), ("files", "file_2"),
                                          ("files", "file_3"), ("files", "file_4"),
                                          ("skills", "skill_9")]
    assert reused_containers(doc) == []
    assert reused_containers({"container": "container_1"}) == ["container_1"]
    assert reused_containers({"requests": [{"params": {"container": {"id": "c2"}}}]}) == ["c2"]
    assert may_name_objects(b'{"file\\u005fid": "x"}')  # an escaped key is still looked at
    assert may_name_objects(b'{"source": {"type": "file", "file_id": "x"}}')
    assert not may_name_objects(b'{"model": "claude", "messages": []}')
    # what Claude Code bodies hold (ANSI escapes, non-ASCII, the words in prose): never walked
    assert not may_name_objects('{"content": "\\u001b[31mthe \\"container\\" and file_id '
                                '\\u00e9"}'.encode())


def owned(n):
    return [Owned("files", f"file_{i}", "t", "u", float(i), {"id": f"file_{i}"})
            for i in range(n, 0, -1)]  # newest first


def test_pages_both_ways():
    six = owned(6)
    first = page("files", six, {"limit": "4"})
    assert [o["id"] for o in first["data"]] == ["file_6", "file_5", "file_4", "file_3"]
    assert first["has_more"] and first["next_page"] == first["last_id"] == "file_3"
    rest = page("files", six, {"limit": "4", "page": "file_3"})
    assert [o["id"] for o in rest["data"]] == ["file_2", "file_1"] and not rest["has_more"]
    assert page("files", six, {"after_id": "file_3", "limit": "4"})["data"] == rest["data"]
    back = page("files", six, {"before_id": "file_2", "limit": "2"})
    assert [o["id"] for o in back["data"]] == ["file_4", "file_3"] and back["has_more"]
    with pytest.raises(BadListQuery, match="limit"):
        page("files", six, {"limit": "0"})
    with pytest.raises(BadListQuery, match="after_id"):
        page("files", six, {"after_id": "someone-elses"})
