"""What a new operator and Claude Code tripped over in their first hour (issue 14)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from ccgate.cli import cli
from ccgate.config.load import ConfigError, load_config
from tests.helpers import OTHER_KEY, ROOT, TENANT_KEY, upstream_entry, write_config
from tests.e2e.servers import free_port, wait_until, wait_up
from tests.mock_upstream import MockResponse, message, message_events

MODEL = "claude-sonnet-4-20250514"
ASK = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def validate(config_dir: Path):
    return CliRunner().invoke(cli, ["--config-dir", str(config_dir), "validate"])


# -- setup and deployment --------------------------------------------------------------------------
@pytest.mark.parametrize("url,fix", [("https://mirror.example/api/v1", "'https://mirror.example/api'"),
                                     ("https://mirror.example/v1/", "'https://mirror.example'"),
                                     ("https://mirror.example/v1/messages", "'https://mirror.example'")])
def test_upstream_url_with_v1_is_flagged_everywhere(tmp_path, make_gateway, url, fix):
    d = write_config(tmp_path / "c", [{"id": "m", "url": url, "key": "k" * 20}])
    result = validate(d)
    assert result.exit_code == 1 and f"write {fix}" in result.output
    assert any("upstreams[0].url" in p for p in load_config(d).problems)  # start-up prints these
    gw = make_gateway([{"id": "m", "url": url, "key": "k" * 20}])
    health = requests.get(gw.url + "/health").json()
    assert "without /v1" in health["upstreams"][0]["configProblem"]
    assert "mirror.example" not in json.dumps(health)


def test_start_up_prints_what_validate_finds(tmp_path):
    port = free_port()
    d = write_config(tmp_path / "c", [{"id": "m", "url": "http://127.0.0.1:9",
                                       "key": "sk-ant-api03-replace-me"}],
                     server={"server": {"port": port}})
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config-dir", str(d),
                             "--data-dir", str(tmp_path / "data")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_up(f"http://127.0.0.1:{port}/health")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert "upstreams[0].key: looks like a placeholder" in out + err


def test_env_references_fill_secrets_and_a_missing_one_is_named(tmp_path, monkeypatch, make_mock):
    mock = make_mock("m")
    d = write_config(tmp_path / "c", [{"id": "m", "url": mock.url, "key": "${MIRROR_KEY}"}],
                     tenants=[{"id": "t", "key": "${TENANT_ONE_KEY}"}])
    monkeypatch.delenv("MIRROR_KEY", raising=False)
    monkeypatch.setenv("TENANT_ONE_KEY", TENANT_KEY)
    with pytest.raises(ConfigError) as e:
        load_config(d)
    assert e.value.lines == ["upstreams.json: upstreams[0].key: environment variable MIRROR_KEY "
                             "is not set"]
    monkeypatch.setenv("MIRROR_KEY", "sk-ant-from-the-environment-1")
    config = load_config(d)
    assert config.upstreams[0].key == "sk-ant-from-the-environment-1"
    assert "${MIRROR_KEY}" in (d / "upstreams.json").read_text()  # the file keeps the reference


def test_paas_first_run_takes_the_admin_password_from_the_environment(tmp_path):
    from ccgate.config.first_run import first_run
    os.environ["CCGATE_ADMIN_PASSWORD"] = "paas-admin-pw-9"
    try:
        message = first_run(tmp_path / "c")
        config = load_config(tmp_path / "c")
    finally:
        del os.environ["CCGATE_ADMIN_PASSWORD"]
    assert "the value of CCGATE_ADMIN_PASSWORD" in message and "paas-admin-pw-9" not in message
    assert config.admin.password == "paas-admin-pw-9"
    assert "paas-admin-pw-9" not in (tmp_path / "c" / "server.json").read_text()
    assert "no restart needed" in message


def test_gunicorn_on_a_fresh_checkout_says_what_to_do(tmp_path):
    port = free_port()
    proc = subprocess.run([sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b",
                           f"127.0.0.1:{port}", "--pythonpath", str(ROOT), "ccgate:create_app()"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr
    assert "no config here" in proc.stderr and "python app.py" in proc.stderr
    assert "CCGATE_CONFIG_DIR" in proc.stderr


def test_cli_health_accepts_the_base_url_and_refuses_other_answers(gw, make_mock):
    result = CliRunner().invoke(cli, ["health", "--url", gw.url])
    assert result.exit_code == 0 and "status ok" in result.output
    other = make_mock("not-a-gateway")
    result = CliRunner().invoke(cli, ["health", "--url", other.url])
    assert result.exit_code == 2 and "not a CCGate /health answer" in result.output


def test_keygen_add_replaces_a_tenants_key(gw, tmp_path):
    config_dir = gw.gateway.config.config_dir
    before = (config_dir / "tenants.json").read_text()
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "keygen", "--tenant",
                                      "bob", "--add"])
    assert result.exit_code == 0, result.output
    new_key = result.output.split("key: ", 1)[1].split()[0]
    doc = json.loads((config_dir / "tenants.json").read_text())
    bob = next(t for t in doc["tenants"] if t["id"] == "bob")
    assert "key" not in bob and bob["keyHash"].startswith("sha256:") and new_key not in json.dumps(doc)
    assert [t["id"] for t in doc["tenants"]] == [t["id"] for t in json.loads(before)["tenants"]]

    def answers(key):
        return requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": key},
                             json={**ASK, "model": "claude-3-5-haiku-20241022"}).status_code
    wait_until(lambda: answers(new_key) == 200, timeout=5)
    assert answers(OTHER_KEY) == 401
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "keygen", "--tenant",
                                      "dora", "--add"])
    assert "created tenant 'dora'" in result.output


def test_root_redirects_to_the_dashboard_and_requests_show_on_the_console(gw, capfd, tmp_path):
    r = requests.get(gw.url + "/", allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].endswith("/dashboard")
    # The console line as the log writer really makes it (logging on, console on, "info").
    from ccgate.ops.logs import access_line, setup_logging, stop_logging
    from ccgate.config.settings import LoggingConfig
    setup_logging(LoggingConfig(level="info", console=True), tmp_path)
    access_line(time="2026-11-27T00:00:00Z", method="POST", path="/anthropic/v1/messages",
                tenantId="alice", status=200, durationMs=12.3)
    stop_logging()  # writes what is queued
    line = capfd.readouterr().err.strip().splitlines()[-1]
    assert line.endswith(
        "POST /anthropic/v1/messages alice 200 12 ms")


# -- dashboard and messages ------------------------------------------------------------------------
def test_money_under_a_cent_is_shown_truly(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "alice", "key": TENANT_KEY, "limits": {"daily": {"maxUSD": 0.0001}}}])
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    message_text = r.json()["error"]["message"]
    assert "limit of $0.0001 reached ($0.000255 spent today)" in message_text


def test_access_log_names_the_model_of_a_refused_request(gw):
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": OTHER_KEY},
                      json={**ASK, "model": "claude-opus-4-1"})
    assert r.status_code == 403
    log = gw.gateway.data_dir / "logs" / "access.log"
    wait_until(lambda: r.headers["x-request-id"] in log.read_text())
    line = next(json.loads(x) for x in log.read_text().splitlines()
                if r.headers["x-request-id"] in x)
    assert line["model"] == "claude-opus-4-1" and line["status"] == 403


# -- Claude Code and other clients -----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/anthropic", "/anthropic/", "/api/hello"])
def test_claude_code_connectivity_probes(gw, upstream, path):
    r = requests.head(gw.url + path)
    assert r.status_code == 200 and r.content == b""
    assert upstream.requests == []


def test_stream_whose_final_delta_arrived_is_complete(gw, upstream):
    import socket
    events = message_events(message(MODEL, [{"type": "text", "text": "done"}]))
    upstream.handler = lambda req: upstream.stream(events, delay_s=0.05)
    body = json.dumps({**ASK, "stream": True}).encode()
    s = socket.create_connection(("127.0.0.1", gw.server.server_port))
    s.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
              b"\r\nx-api-key: " + TENANT_KEY.encode() + f"\r\ncontent-length: {len(body)}"
              f"\r\n\r\n".encode() + body)
    s.settimeout(5)
    seen = b""
    while b"event: message_delta" not in seen or seen.find(
            b"\n\n", seen.index(b"event: message_delta")) < 0:
        seen += s.recv(65536)
    assert b"message_stop" not in seen
    s.close()  # like litellm: gone before message_stop
    log = gw.gateway.data_dir / "usage" / "alice"
    wait_until(lambda: list(log.glob("*/*.json")))
    record = json.loads(next(log.glob("*/*.json")).read_text().splitlines()[0])
    assert "interrupted" not in record and record["outputTokens"] == 12


def test_upstream_server_headers_do_not_reach_tenants(gw, upstream):
    upstream.handler = lambda req: MockResponse(headers=[
        ("content-type", "application/json"), ("server", "mirror-nginx/1.2"),
        ("x-powered-by", "Express"), ("via", "1.1 mirror")],
        body=json.dumps(message(MODEL, [])).encode())
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    assert r.status_code == 200
    assert "mirror" not in json.dumps(dict(r.headers)) and "Express" not in str(r.headers)


def test_duplicate_top_level_key_is_refused(gw, upstream):
    body = b'{"model":"claude-3-5-haiku-20241022","model":"claude-opus-4-1","max_tokens":5,' \
           b'"messages":[{"role":"user","content":"hi"}]}'
    r = requests.post(gw.url + "/anthropic/v1/messages", data=body,
                      headers={"x-api-key": OTHER_KEY, "content-type": "application/json"})
    assert r.status_code == 400 and "'model' twice" in r.json()["error"]["message"]
    assert upstream.requests == []
