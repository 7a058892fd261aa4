"""Operations: the CLI, logs, metrics, hot reload, graceful shutdown, several worker processes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gevent
import gevent.pool
import pytest
import requests
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from ccgate.cli import cli
from ccgate.config.load import load_config
from tests.helpers import TENANT_KEY, UPSTREAM_KEY, upstream_entry, write_config
from tests.e2e.servers import free_port, wait_up, wait_until

ROOT = Path(__file__).resolve().parents[2]
MODEL = "claude-sonnet-4-20250514"
ASK = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def run_cli(*args, env=None, input=None):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True,
                          text=True, timeout=30, input=input, env={**os.environ, **(env or {})})






# -- CLI ------------------------------------------------------------------------------------------
def test_validate_good_config(tmp_path):
    d = write_config(tmp_path / "c", [{"id": "a", "url": "https://api.anthropic.com", "key": "sk-ant-real-1234"}])
    r = CliRunner().invoke(cli, ["--config-dir", str(d), "validate"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("OK: 1 upstreams (1 enabled), 3 tenants, strategy round_robin")


def test_validate_broken_json_and_schema_as_subprocess(tmp_path):
    d = write_config(tmp_path / "c", [{"id": "a", "url": "http://127.0.0.1:1", "key": "k" * 20}])
    (d / "server.json").write_text('{"server": {"port": 70000}, "admin": {"enabled": "yes"}}')
    (d / "tenants.json").write_text('{"tenants": [')
    r = run_cli("--config-dir", str(d), "validate")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert "server.json: admin.enabled: 'yes' is not of type 'boolean'" in lines
    assert "server.json: server.port: 70000 is greater than the maximum of 65535" in lines
    assert any(line.startswith("tenants.json: $: invalid JSON at line 1") for line in lines)
    assert "Traceback" not in r.stderr + r.stdout


def test_validate_flags_placeholder_upstreams(node_config):
    r = CliRunner().invoke(cli, ["--config-dir", str(node_config), "validate"])
    assert r.exit_code == 1
    assert "upstreams.json: upstreams[0].url: 'https://api.claude***proxy.com/api' does not look " \
           "reachable" in r.output


def test_keygen_output_is_accepted_by_the_loader(tmp_path):
    out = run_cli("keygen", "--tenant", "grandma").stdout
    key = out.split("key:")[1].split()[0]
    snippet = json.loads(out[out.index("{"):])
    d = write_config(tmp_path / "c", [{"id": "a", "url": "http://127.0.0.1:1"}], tenants=[snippet])
    from ccgate.tenants import TenantRegistry
    assert TenantRegistry(load_config(d).tenants).authenticate(key).id == "grandma"


def test_hash_password(tmp_path):
    r = CliRunner().invoke(cli, ["hash-password"], input="long-enough-pw\nlong-enough-pw\n")
    from werkzeug.security import check_password_hash
    assert r.exit_code == 0 and check_password_hash(r.output.strip().splitlines()[-1], "long-enough-pw")


def test_clean_before_date(tmp_path):
    usage = tmp_path / "data" / "usage" / "t"
    for day in ("2026-10-30", "2026-11-01", "2026-11-02"):
        f = usage / day[:7] / f"{day}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("{}\n")
    (tmp_path / "data" / "logs").mkdir(parents=True)
    (tmp_path / "data" / "logs" / "combined.log").write_text("x")
    r = run_cli("--data-dir", str(tmp_path / "data"), "clean", "--usage", "--before", "2026-11-02", "--yes")
    assert r.returncode == 0 and "2026-10-30.json" in r.stdout and "deleted 2 files" in r.stdout
    assert sorted(p.name for p in usage.rglob("*.json")) == ["2026-11-02.json"]
    assert not (usage / "2026-10").exists()
    assert (tmp_path / "data" / "logs" / "combined.log").exists()
    r = run_cli("--data-dir", str(tmp_path / "data"), "clean", "--logs", input="n\n")
    assert r.returncode == 1 and (tmp_path / "data" / "logs" / "combined.log").exists()


def test_usage_report_formats(tmp_path):
    from ccgate.usage.store_file import FileStore
    from datetime import datetime, timezone
    today = datetime.now(timezone.utc).date()
    store = FileStore(tmp_path / "data")
    store.append({"tenantId": "alice", "requestId": "1", "totalCost": 0.5, "inputTokens": 3,
                  "totalTokens": 3, "statusCode": 200}, today)
    store.close()
    d = write_config(tmp_path / "c", [{"id": "a", "url": "http://127.0.0.1:1"}])
    args = ["--config-dir", str(d), "--data-dir", str(tmp_path / "data"), "usage", "--days", "2"]
    rows = json.loads(CliRunner().invoke(cli, args + ["--format", "json", "--tenant", "alice"]).output)
    assert [r["requests"] for r in rows] == [0, 1] and rows[-1]["costUSD"] == 0.5
    csv_out = CliRunner().invoke(cli, args + ["--format", "csv"]).output.splitlines()
    assert csv_out[0].startswith("tenant,date,requests") and len(csv_out) == 1 + 2 * 3
    table = CliRunner().invoke(cli, args).output
    assert "alice" in table and "0.5000" in table


def test_health_command_running_and_stopped(gw):
    r = run_cli("health", "--url", gw.url + "/health")
    assert r.returncode == 0, r.stderr
    assert "primary" in r.stdout and "status ok" in r.stdout
    r = run_cli("health", "--url", f"http://127.0.0.1:{free_port()}/health")
    assert r.returncode == 2 and "not running" in r.stderr


def test_flask_ccgate_group_even_with_broken_config(tmp_path):
    d = write_config(tmp_path / "c", [{"id": "a", "url": "http://127.0.0.1:1", "key": "sk-real-123456"}])
    env = {**os.environ, "CCGATE_CONFIG_DIR": str(d), "CCGATE_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "ccgate", "validate"],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("OK:"), r.stderr
    (d / "upstreams.json").write_text("{")
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "ccgate", "validate"],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and "upstreams.json: $: invalid JSON" in r.stderr
    assert "Traceback" not in r.stderr


def test_app_help_lists_options():
    r = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True)
    for option in ("--config-dir", "--data-dir", "--host", "--port", "--reload"):
        assert option in r.stdout


# -- logs and metrics -----------------------------------------------------------------------------
def test_access_log_lines_match_request_ids_and_hold_no_secrets(gw, upstream):
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    rid = r.headers["x-request-id"]
    s = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={**ASK, "stream": True})
    bad = requests.get(gw.url + "/usage", headers={"x-api-key": "nope-nope-nope"})
    assert bad.headers["x-request-id"]
    logs = Path(gw.gateway.data_dir) / "logs"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = (logs / "access.log").read_text().splitlines() if (logs / "access.log").exists() else []
        if len(lines) >= 3:
            break
        gevent.sleep(0.05)
    entries = {e["requestId"]: e for e in map(json.loads, lines)}
    first = entries[rid]
    assert first["tenantId"] == "alice" and first["model"] == MODEL and first["status"] == 200
    assert first["upstream"] == "primary" and first["path"] == "/anthropic/v1/messages"
    assert first["bytes"] > 0 and first["durationMs"] >= 0 and first["ttfbMs"] is not None
    assert entries[s.headers["x-request-id"]]["bytes"] == len(s.content)
    assert entries[bad.headers["x-request-id"]]["status"] == 401
    usage_lines = list((Path(gw.gateway.data_dir) / "usage").rglob("*.json"))
    assert rid in usage_lines[0].read_text()  # the usage record carries the same id
    everything = "".join(p.read_text() for p in logs.glob("*.log"))
    assert TENANT_KEY not in everything and UPSTREAM_KEY not in everything


def test_metrics_show_the_requests_just_made(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], server={"metrics": {"token": "scrape-token-1"}})

    def value(name, **labels):
        r = requests.get(gw.url + "/metrics", headers={"authorization": "Bearer scrape-token-1"})
        assert r.status_code == 200
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0

    before = value("ccgate_requests_total", tenant="alice", status="200")
    tokens_before = value("ccgate_tokens_total", tenant="alice", kind="input")
    for _ in range(3):
        requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    assert value("ccgate_requests_total", tenant="alice", status="200") == before + 3
    assert value("ccgate_tokens_total", tenant="alice", kind="input") == tokens_before + 75
    assert value("ccgate_upstream_requests", upstream="primary") == 3
    assert value("ccgate_upstream_healthy", upstream="primary") == 1
    assert requests.get(gw.url + "/metrics").status_code == 401


def test_metrics_are_private_by_default(make_gateway, upstream):
    """Issue 32: anyone on the network read every tenant's cost and tokens."""
    admin = {"username": "boss", "password": "s3cret-Passw0rd"}
    gw = make_gateway([upstream_entry(upstream)], server={"admin": admin})
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    anonymous = requests.get(gw.url + "/metrics")
    assert anonymous.status_code == 401 and "alice" not in anonymous.text
    assert "metrics.token" in anonymous.json()["error"]["message"]
    scraped = requests.get(gw.url + "/metrics", auth=("boss", "s3cret-Passw0rd"))
    assert scraped.status_code == 200 and 'tenant="alice"' in scraped.text
    assert requests.get(gw.url + "/metrics", auth=("boss", "wrong")).status_code == 401
    public = make_gateway([upstream_entry(upstream)], server={"metrics": {"public": True}})
    assert requests.get(public.url + "/metrics").status_code == 200


# -- hot reload -----------------------------------------------------------------------------------
def test_hot_reload_picks_up_a_tenant_and_rejects_a_bad_edit(gw, upstream):
    new_key = "sk-ccg-added-while-running-123"
    config_dir = gw.gateway.config.config_dir
    tenants = json.loads((config_dir / "tenants.json").read_text())
    assert requests.get(gw.url + "/usage", headers={"x-api-key": new_key}).status_code == 401
    state = gw.gateway.pool.states[0]
    requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    tenants["tenants"].append({"id": "dave", "key": new_key})
    (config_dir / "tenants.json").write_text(json.dumps(tenants))
    started = time.monotonic()
    while requests.get(gw.url + "/usage", headers={"x-api-key": new_key}).status_code != 200:
        assert time.monotonic() - started < 3, "new tenant not picked up within 3 s"
        gevent.sleep(0.1)
    assert gw.gateway.pool.states[0] is state and state.requests == 1  # upstream state survived
    (config_dir / "tenants.json").write_text('{"tenants": [{"id": "x"}]}')  # invalid: no key
    gevent.sleep(2)
    assert requests.get(gw.url + "/usage", headers={"x-api-key": new_key}).status_code == 200
    r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY}, json=ASK)
    assert r.status_code == 200
    error_log = (Path(gw.gateway.data_dir) / "logs" / "error.log")
    deadline = time.monotonic() + 2
    while "config reload rejected" not in (error_log.read_text() if error_log.exists() else ""):
        assert time.monotonic() < deadline
        gevent.sleep(0.05)
    assert "tenants.json: tenants[0]: needs a 'key' or a 'keyHash'" in error_log.read_text()


# -- processes ------------------------------------------------------------------------------------
def test_sigterm_lets_a_slow_stream_finish_then_exits_0(make_mock, tmp_path):
    mock = make_mock("slow")
    mock.event_delay_s = 0.15
    config = write_config(tmp_path / "c", [upstream_entry(mock)])
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config-dir", str(config),
                             "--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_up(f"http://127.0.0.1:{port}/health")
        r = requests.post(f"http://127.0.0.1:{port}/anthropic/v1/messages", stream=True,
                          headers={"x-api-key": TENANT_KEY}, json={**ASK, "stream": True})
        it = r.iter_content(chunk_size=None)
        first = next(it)
        proc.send_signal(signal.SIGTERM)
        rest = b"".join(it)
        body = first + rest
        assert b"message_stop" in body and b"event: error" not in body
        assert proc.wait(10) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_gunicorn_two_workers_exact_usage(make_mock, tmp_path):
    mock = make_mock("m")
    config = write_config(tmp_path / "c", [upstream_entry(mock)],
                          server={"metrics": {"token": "scrape-token-1"}})
    port = free_port()
    env = {**os.environ, "CCGATE_CONFIG_DIR": str(config), "CCGATE_DATA_DIR": str(tmp_path / "data"),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    (tmp_path / "prom").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "2", "-b",
                             f"127.0.0.1:{port}", "ccgate:create_app()"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/health", 30)
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=20))

        def one(i):
            return session.post(f"http://127.0.0.1:{port}/anthropic/v1/messages",
                                headers={"x-api-key": TENANT_KEY}, json={**ASK, "stream": i % 3 == 0}).status_code

        assert gevent.pool.Pool(20).map(one, range(100)) == [200] * 100
        records = [json.loads(line) for f in (tmp_path / "data" / "usage" / "alice").rglob("*.json")
                   for line in f.read_text().splitlines()]
        assert len(records) == 100 and len({r["requestId"] for r in records}) == 100
        for _ in range(4):  # whichever worker answers sees the same totals
            today = requests.get(f"http://127.0.0.1:{port}/usage", headers={"x-api-key": TENANT_KEY}).json()["today"]
            assert today["requests"] == 100 and today["inputTokens"] == 2500

        def total() -> float:
            metrics = requests.get(f"http://127.0.0.1:{port}/metrics",
                                   headers={"authorization": "Bearer scrape-token-1"}).text
            return sum(s.value for f in text_string_to_metric_families(metrics) for s in f.samples
                       if s.name == "ccgate_requests_total" and s.labels.get("tenant") == "alice")
        # summed over both workers, each counting within half a second (metrics.FLUSH_EVERY_S)
        wait_until(lambda: total() == 100, 5)
    finally:
        proc.terminate()
        proc.wait(15)


def test_model_labels_stay_bounded_whatever_models_the_upstream_answers(make_gateway, upstream):
    """Issue 32, item 4: behind an upstream that answers any model name, 3,000 names grew
    /metrics to 8.7 MB. Successful answers, with a price (a pricing.json "*" entry), too."""
    import ccgate.ops.metrics as metrics
    gw = make_gateway([upstream_entry(upstream)], server={"metrics": {"token": "scrape-token-1"}},
                      pricing={"modelPricing": {"*": {"input": 0.001, "output": 0.002}}})
    for i in range(metrics.MAX_MODEL_LABELS + 50):
        r = requests.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                          json={**ASK, "model": f"made-up-model-{i}"})
        assert r.status_code == 200
    text = requests.get(gw.url + "/metrics",
                        headers={"authorization": "Bearer scrape-token-1"}).text
    labels = {s.labels["model"] for f in text_string_to_metric_families(text)
              if f.name == "ccgate_requests" for s in f.samples if "model" in s.labels}
    assert len(labels) <= metrics.MAX_MODEL_LABELS + 1 and "other" in labels
    assert len(text) < 2_000_000
