"""Config loading: Node CCGate files load unchanged; every problem reported as file: path: message."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccgate.config.first_run import first_run
from ccgate.config.load import ConfigError, load_config
from tests.helpers import write_config

ROOT = Path(__file__).resolve().parents[2]


def test_node_ccgate_example_files_load_unchanged(node_config):
    config = load_config(node_config)
    assert config.port == 3000 and config.host == "0.0.0.0"
    assert config.upstreams[0].url == "https://api.claude***proxy.com/api"
    assert config.upstreams[0].weight == 100
    assert config.tenants[0].allowed_models == ("*haiku*", "*sonnet*")
    assert config.load_balancer.strategy == "weighted_round_robin"
    assert config.openai.models["gpt-5-low"] == "claude-sonnet-4-20250514"
    assert config.pricing["modelPricing"]["*sonnet*"]["input"] == 0.003
    # Node's informational keys load silently; the short timeout, the default admin password
    # ("changeme"), the files' mode (copied 0644, holding keys) and each alias to a model
    # Anthropic retired are worth a warning.
    retired = [w for w in config.warnings if "was retired on" in w]
    assert retired and all("point it at a current model such as" in w for w in retired)
    assert len(config.warnings) == 5 + len(retired)
    assert sum("readable by other users" in w and "chmod 600" in w for w in config.warnings) == 3
    assert any("proxy.timeout is 30000 ms" in w for w in config.warnings)
    assert any("admin.password is a well-known default" in w for w in config.warnings)


def test_unknown_keys_warn_but_load(tmp_path):
    d = write_config(tmp_path, [{"id": "a", "url": "http://127.0.0.1:1", "colour": "red"}],
                     server={"server": {"port": 3000}, "fancy": {"x": 1}})
    config = load_config(d)
    assert "server.json: fancy: unknown key, ignored" in config.warnings
    assert "upstreams.json: upstreams[0].colour: unknown key, ignored" in config.warnings


def test_every_problem_is_reported_at_once(tmp_path):
    d = write_config(tmp_path, [
        {"id": "a", "url": "ftp://nope", "weight": -1},
        {"id": "a", "url": "http://127.0.0.1:1", "weight": 1.5},
    ], tenants=[{"id": "x", "key": "short"}, {"id": "../etc", "key": "k" * 20}],
        server={"server": {"port": "3000"}}, load_balancer={"strategy": "fastest"})
    with pytest.raises(ConfigError) as exc:
        load_config(d)
    lines = exc.value.lines
    assert "server.json: server.port: '3000' is not of type 'integer'" in lines
    assert any(line.startswith("upstreams.json: upstreams[0].url: ") for line in lines)
    assert "upstreams.json: upstreams[0].weight: -1 is less than the minimum of 0" in lines
    assert "upstreams.json: upstreams[1].weight: 1.5 is not of type 'integer'" in lines
    assert any(line.startswith("upstreams.json: loadBalancer.strategy: 'fastest' is not one of")
               for line in lines)
    assert "tenants.json: tenants[0].key: not valid here (minLength 8); the value is not shown" \
        in lines  # a key is never echoed, not even a wrong one
    assert any(line.startswith("tenants.json: tenants[1].id: ") for line in lines)


def test_cross_file_rules(tmp_path):
    d = write_config(tmp_path, [{"id": "a", "url": "http://127.0.0.1:1"},
                                {"id": "a", "url": "http://127.0.0.1:2"}],
                     tenants=[{"id": "t", "key": "same-key-123"}, {"id": "t", "key": "same-key-123"},
                              {"id": "u"}])
    with pytest.raises(ConfigError) as exc:
        load_config(d)
    assert exc.value.lines == [
        "upstreams.json: upstreams[1].id: duplicate id 'a' (also upstreams[0])",
        "tenants.json: tenants[1].id: duplicate id 't' (also tenants[0])",
        "tenants.json: tenants[1].key: same key as tenants[0]",
        "tenants.json: tenants[2]: needs a 'key' or a 'keyHash'",
    ]


def test_key_hash_replaces_key(tmp_path):
    from ccgate.config.load import hash_key
    from ccgate.tenants import TenantRegistry
    d = write_config(tmp_path, [{"id": "a", "url": "http://127.0.0.1:1"}],
                     tenants=[{"id": "t", "keyHash": "sha256:" + hash_key("my-secret-key").upper()}])
    registry = TenantRegistry(load_config(d).tenants)
    assert registry.authenticate("my-secret-key").id == "t"
    assert registry.authenticate("my-secret-keY") is None


def run_app(*args, env=None, timeout=20):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_app_exits_nonzero_on_broken_json_without_traceback(tmp_path):
    d = write_config(tmp_path, [{"id": "a", "url": "http://127.0.0.1:1"}])
    (d / "tenants.json").write_text('{"tenants": [ {"id": "x", }')
    result = run_app("--config-dir", str(d), "--data-dir", str(tmp_path / "data"), "--port", "1")
    assert result.returncode == 1
    assert "tenants.json: $: invalid JSON at line 1 column 27" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_app_exits_nonzero_on_schema_errors(tmp_path):
    d = write_config(tmp_path, [{"id": "a", "url": "http://127.0.0.1:1", "enabled": "yes"}])
    result = run_app("--config-dir", str(d), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "upstreams.json: upstreams[0].enabled: 'yes' is not of type 'boolean'" in result.stderr
    assert "Traceback" not in result.stderr


def test_first_run_creates_config_with_hashed_secrets(tmp_path):
    message = first_run(tmp_path / "cfg")
    config = load_config(tmp_path / "cfg")
    key = message.split("tenant key")[1].split()[0]
    password = message.split("password")[1].split()[0]
    from ccgate.tenants import TenantRegistry
    assert TenantRegistry(config.tenants).authenticate(key) is not None
    stored = (tmp_path / "cfg" / "tenants.json").read_text() + (tmp_path / "cfg" / "server.json").read_text()
    assert key not in stored and password not in stored
    assert first_run(tmp_path / "cfg") is None  # second start: nothing printed, nothing rewritten


def test_app_starts_with_unreachable_upstream_and_env_port(tmp_path):
    import socket
    import time
    import requests
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp_path,
                            env={**os.environ, "PORT": str(port), "HOST": "127.0.0.1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.1)
        body = r.json()
        # api.anthropic.com is out of reach here: the probe may already have marked it down
        assert (r.status_code, body["status"]) in ((200, "ok"), (503, "down"))
        assert body["upstreams"][0]["id"] == "anthropic"
        assert "url" not in json.dumps(body) and "sk-" not in json.dumps(body)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "tenant key       sk-ccg-" in out  # first run printed the key once
    assert (tmp_path / "config" / "tenants.json").exists()


def test_files_written_by_the_gateway_are_private_and_open_ones_warned_about(tmp_path):
    from ccgate.config.first_run import first_run
    first_run(tmp_path / "cfg")
    for name in ("server.json", "upstreams.json", "tenants.json"):
        assert (tmp_path / "cfg" / name).stat().st_mode & 0o777 == 0o600
    assert not [w for w in load_config(tmp_path / "cfg").warnings if "readable" in w]
    (tmp_path / "cfg" / "tenants.json").chmod(0o644)
    assert [w for w in load_config(tmp_path / "cfg").warnings if "readable" in w] == [
        f"tenants.json is readable by other users of this machine (mode 644) and holds keys: "
        f"chmod 600 {tmp_path / 'cfg' / 'tenants.json'}"]
