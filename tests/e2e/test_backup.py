"""Issue 35: ``python cli.py backup`` while the gateway serves requests, then ``restore`` into
empty directories: a gateway on the restored directories answers the same ``/usage``."""
import io
import json
import os
import subprocess
import sys
import tarfile

import gevent
import pytest
import requests

from ccgate import create_app
from tests.e2e.servers import RunningGateway
from tests.helpers import ROOT, TENANT_KEY, upstream_entry

ASK = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def cli(*args, config, data) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "--config-dir", str(config),
                           "--data-dir", str(data), *args], capture_output=True, text=True,
                          timeout=60)


def usage(url: str) -> dict:
    return requests.get(url + "/usage", headers={"x-api-key": TENANT_KEY}).json()["today"]


def test_backup_while_serving_then_restore_gives_the_same_usage(make_gateway, upstream, tmp_path):
    gw = make_gateway([upstream_entry(upstream)])
    config, data = gw.gateway.config.config_dir, gw.gateway.data_dir
    for _ in range(20):
        requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    before = usage(gw.url)["requests"]
    stop = []

    def serve():  # requests keep coming while the backup is taken
        while not stop:
            requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                          json=ASK)
    clients = [gevent.spawn(serve) for _ in range(4)]
    archive = tmp_path / "backup.tar.gz"
    gevent.sleep(0.2)
    proc = cli("backup", "--out", str(archive), config=config, data=data)  # yields meanwhile
    stop.append(True)
    gevent.joinall(clients, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600"
    with tarfile.open(archive) as tar:
        lines = [line for m in tar.getmembers() if m.name.startswith("data/usage/")
                 for line in tar.extractfile(m).read().splitlines()]
    saved = [json.loads(line) for line in lines]  # every line whole
    after = usage(gw.url)["requests"]
    assert before <= len(saved) <= after and after > before  # taken while requests went on

    restored_config, restored_data = tmp_path / "rc", tmp_path / "rd"
    done = cli("restore", str(archive), config=restored_config, data=restored_data)
    assert done.returncode == 0, done.stderr
    again = RunningGateway(create_app(restored_config, restored_data))
    try:
        day = usage(again.url)
        assert day["requests"] == len(saved)
        assert day["costUSD"] == pytest.approx(sum(r["totalCost"] for r in saved), abs=1e-6)
    finally:
        again.stop()
    # restoring over existing directories is refused, and nothing is written
    refused = cli("restore", str(archive), config=restored_config, data=restored_data)
    assert refused.returncode == 1 and "not empty" in refused.stderr


def test_a_damaged_archive_restores_nothing(gw, tmp_path):
    config, data = gw.gateway.config.config_dir, gw.gateway.data_dir
    archive = tmp_path / "b.tar.gz"
    assert cli("backup", "--out", str(archive), config=config, data=data).returncode == 0
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    members["config/tenants.json"] = b'{"tenants": []}'  # changed after the backup
    members["../escape"] = b"x"
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    out = cli("restore", str(bad), config=tmp_path / "c2", data=tmp_path / "d2")
    assert out.returncode == 1
    assert "config/tenants.json: damaged" in out.stderr and "../escape: not allowed" in out.stderr
    assert not (tmp_path / "c2").exists() and not (tmp_path / "d2").exists()
