"""A full or read-only disk under the usage files and the logs (issue 21, items 1 and 2).

Each test mounts a small tmpfs of its own (root only; skipped elsewhere) and unmounts it after.
"""
import json
import os
import subprocess
from datetime import date
from pathlib import Path

import gevent
import pytest
import requests

from ccgate import create_app
from ccgate.usage.spool import FallbackSpool
from ccgate.usage.store_file import FileStore
from tests.helpers import OTHER_KEY, TENANT_KEY, upstream_entry, write_config
from tests.e2e.servers import RunningGateway, wait_until
from tests.mock_upstream import MockResponse, message

MODEL = "claude-sonnet-4-20250514"
ASK = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
COST = (1000 * 3 + 500 * 15) / 1e6  # $0.0105 a request at Sonnet's $3 / $15 per M


def _mount(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture
def tmpfs():
    mounted = []

    def make(path: Path, size: str = "64k") -> Path:
        if os.geteuid() != 0 or not _mount(path, size):
            pytest.skip("needs root and mount (tmpfs) to fake a full disk")
        mounted.append(path)
        return path

    yield make
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """Fill a filesystem to the last byte; the filler file is returned for freeing it later."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def costly(req):
    return MockResponse(body=json.dumps(message(MODEL, [{"type": "text", "text": "ok"}],
                                                input_tokens=1000, output_tokens=500)).encode())


def day_records(data: Path, tenant: str) -> list[dict]:
    return [json.loads(line) for f in sorted((data / "usage" / tenant).glob("*/*.json"))
            for line in f.read_text().split("\n") if line]



def gateway(tmp_path, upstream, server=None, tenants=None):
    config = write_config(tmp_path / "config", [upstream_entry(upstream)], server=server,
                          tenants=tenants or [
                              {"id": "alice", "key": TENANT_KEY,
                               "limits": {"daily": {"maxUSD": 0.05}}},
                              {"id": "bob", "key": OTHER_KEY}])
    return RunningGateway(create_app(config, tmp_path / "data"))


def post(gw, key=TENANT_KEY):
    return requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": key}, json=ASK)


def test_full_data_disk_spools_records_keeps_limits_and_writes_them_once(tmp_path, upstream, tmpfs):
    upstream.handler = costly
    data = tmp_path / "data"
    filler = fill(tmpfs(data / "usage"))
    gw = gateway(tmp_path, upstream, server={"storage": {"spoolDir": str(tmp_path / "spool")}})
    try:
        statuses = [post(gw).status_code for _ in range(10)]
        assert statuses == [200] * 5 + [429] * 5  # the limit holds on spooled spend
        health = requests.get(gw.url + "/health").json()
        assert health["status"] == "degraded"
        assert "usage records cannot be written" in health["storage"]["problem"]
        assert day_records(data, "alice") == []
        filler.unlink()
        wait_until(lambda: len(day_records(data, "alice")) == 5)
        gevent.sleep(2.5)  # another retry round: nothing is written twice
        recs = day_records(data, "alice")
        assert len(recs) == 5 and len({r["requestId"] for r in recs}) == 5
        assert requests.get(gw.url + "/health").json()["status"] == "ok"
        usage = requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).json()
        assert usage["today"]["costUSD"] == pytest.approx(5 * COST)
        assert not list((tmp_path / "spool").glob("*.jsonl"))
    finally:
        gw.stop()


def test_nothing_writable_refuses_spend_limited_tenants_until_it_is(tmp_path, upstream, tmpfs):
    upstream.handler = costly
    data = tmp_path / "data"
    usage_dir, spool_dir = tmpfs(data / "usage"), tmpfs(tmp_path / "spool")
    gw = gateway(tmp_path, upstream, server={"storage": {"spoolDir": str(spool_dir)}})
    try:
        remount(usage_dir, "ro")
        remount(spool_dir, "ro")
        assert post(gw, OTHER_KEY).status_code == 200  # no spend limit: served, kept in memory
        sent = len(upstream.requests)
        r = post(gw)
        assert r.status_code == 503
        assert r.json()["error"]["type"] == "overloaded_error"
        assert "usage cannot be recorded" in r.json()["error"]["message"]
        assert len(upstream.requests) == sent  # nothing went upstream for it
        assert "memory" in requests.get(gw.url + "/health").json()["storage"]["problem"]
        remount(usage_dir, "rw")
        remount(spool_dir, "rw")
        wait_until(lambda: len(day_records(data, "bob")) == 1)
        assert post(gw).status_code == 200
        assert len(day_records(data, "alice")) == 1
    finally:
        gw.stop()


def test_spool_left_by_a_dead_process_is_written_once(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    day = date(2026, 11, 26)
    first = FileStore(tmp_path / "data")
    rec = {"requestId": "r1", "tenantId": "t", "timestamp": "2026-11-26T01:00:00.000Z",
           "model": MODEL, "totalCost": 1.0, "statusCode": 200, "userAgent": "a\u2028b"}
    first.append(rec, day)
    lines = [json.dumps({"day": "2026-11-26", "record": r}, ensure_ascii=False)
             for r in (rec, {**rec, "requestId": "r2"})]
    (spool / "usage-999999999.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = FileStore(tmp_path / "data", spool=FallbackSpool(spool, frozenset({"t"})))
    assert [r["requestId"] for r in store.records("t", day)] == ["r1", "r2"]
    assert store.records("t", day)[1]["userAgent"] == "a\u2028b"
    assert not list(spool.iterdir())


def test_log_disk_full_keeps_the_writer_alive_and_bounded(tmp_path, upstream, tmpfs):
    logs = tmpfs(tmp_path / "data" / "logs")
    gw = gateway(tmp_path, upstream, tenants=[{"id": "alice", "key": TENANT_KEY}])
    try:
        filler = fill(logs)
        session = requests.Session()
        for _ in range(200):
            assert session.post(gw.url + "/anthropic/v1/messages",
                                headers={"x-api-key": TENANT_KEY}, json=ASK).status_code == 200
        from ccgate.ops import logs as logs_module
        writer = logs_module._current[0]
        wait_until(lambda: writer.queue.qsize() == 0)  # the writer still drains the queue
        health = requests.get(gw.url + "/health").json()
        assert health["status"] == "degraded" and "lines lost" in health["logs"]["problem"]
        filler.unlink()
        (logs / "access.log").write_text("")
        gevent.sleep(1.1)  # the broken file is reopened at most once a second
        marker = session.post(gw.url + "/anthropic/v1/messages",
                              headers={"x-api-key": TENANT_KEY}, json=ASK)
        rid = marker.headers["x-request-id"]
        wait_until(lambda: rid in (logs / "access.log").read_text())
        session.close()
    finally:
        gw.stop()
