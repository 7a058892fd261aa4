"""Issue 29, item 3: another user of the machine plants files where the spool used to live
(``<tmp>/ccgate-spool-<hash of the data dir>``, a predictable name in a world-writable
directory): a record with a negative cost, a symbolic link to the tenants file, a FIFO. None of
it changes spend, config or start-up."""
import hashlib
import json
import os
import tempfile
from pathlib import Path

import gevent
import pytest
import requests

from ccgate import create_app
from tests.helpers import TENANT_KEY, upstream_entry, write_config
from tests.e2e.servers import RunningGateway

ASK = {"model": "claude-sonnet-4-20250514", "max_tokens": 5,
       "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def old_spool(tmp_path):
    data = tmp_path / "data"
    digest = hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:12]
    where = Path(tempfile.gettempdir()) / f"ccgate-spool-{digest}"
    where.mkdir(mode=0o777)
    where.chmod(0o777)
    yield data, where
    for p in where.iterdir():
        p.unlink()
    where.rmdir()


def test_planted_spool_files_change_nothing(tmp_path, upstream, old_spool):
    data, where = old_spool
    config = write_config(tmp_path / "config", [upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 0.0002}}}])
    tenants_before = (config / "tenants.json").read_bytes()
    record = {"requestId": "forged", "tenantId": "alice", "timestamp": "2026-12-06T00:00:00.000Z",
              "model": "claude-sonnet-4-20250514", "totalCost": -1000, "statusCode": 200}
    from datetime import date
    line = json.dumps({"day": date.today().isoformat(), "record": record}) + "\n"
    (where / "usage-999999901.jsonl").write_text(line)
    (where / "usage-999999902.jsonl").symlink_to(config / "tenants.json")
    os.mkfifo(where / "usage-999999903.jsonl")
    started = gevent.Timeout(10)  # start-up must not hang on the FIFO
    started.start()
    try:
        gw = RunningGateway(create_app(config, data))
    finally:
        started.cancel()
    try:
        codes = [requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                               json=ASK).status_code for _ in range(5)]
        assert codes[0] == 200 and codes[-1] == 429  # the $0.0002 limit still holds
        usage = requests.get(gw.url + "/usage", headers={"x-api-key": TENANT_KEY}).json()
        assert usage["today"]["costUSD"] > 0
        assert (config / "tenants.json").read_bytes() == tenants_before
        assert sorted(p.name for p in where.iterdir()) == [
            "usage-999999901.jsonl", "usage-999999902.jsonl", "usage-999999903.jsonl"]
        private = gw.gateway.private_dir
        assert private != where and private.stat().st_mode & 0o777 == 0o700
        assert private.stat().st_uid == os.geteuid()
    finally:
        gw.stop()
