"""Issue 33, part 3: the second first hour (status line, a rejected reload, the first run's
placeholder key)."""
import json
import re
import subprocess

import pytest
import requests

from tests.e2e.servers import wait_until
from tests.helpers import ROOT, TENANT_KEY, upstream_entry

ADMIN = {"username": "boss", "password": "s3cret-Passw0rd"}


def readme_status_command() -> str:
    """The status-line command exactly as the README gives it."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r'\{"statusLine": \{"type": "command",\s*"command": (".*?")\}\}', text, re.S)
    return json.loads(block.group(1))


@pytest.mark.parametrize("variable", ["ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY"])
def test_the_readme_status_line_works_with_either_variable(gw, variable):
    env = {"PATH": "/usr/bin:/bin", "ANTHROPIC_BASE_URL": gw.url + "/anthropic", variable: TENANT_KEY}
    out = subprocess.run(["bash", "-c", readme_status_command()], env=env, capture_output=True,
                         text=True, timeout=20).stdout
    assert out.count("\n") == 1 and out.startswith("Alice · today $")


@pytest.mark.parametrize("key", [None, "sk-wrong-key-000000000000"])
def test_the_status_line_is_one_plain_line_when_something_is_wrong(gw, key):
    r = requests.get(gw.url + "/usage/statusline",
                     headers={"authorization": f"Bearer {key}"} if key else {})
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/plain")
    assert r.text.count("\n") == 1 and r.text.startswith("CCGate: invalid or missing API key")


def test_a_rejected_reload_shows_on_health_and_the_dashboard(make_gateway, upstream, tmp_path):
    gw = make_gateway([upstream_entry(upstream)], server={"admin": ADMIN})
    config_dir = gw.gateway.config.config_dir
    tenants = config_dir / "tenants.json"
    good = tenants.read_text()
    tenants.write_text(good.replace('"id": "alice"', '"id": "a l i c e"'))
    gw.gateway.watcher.check(force=True)
    health = requests.get(gw.url + "/health").json()
    assert health["status"] == "degraded" and "rejected" in health["configProblem"]
    assert "a l i c e" not in json.dumps(health)  # the public page says where to look, not what
    overview = requests.get(gw.url + "/admin/api/overview", auth=(ADMIN["username"],
                                                                  ADMIN["password"])).json()
    assert overview["configProblem"].startswith("the config files were changed but cannot be "
                                                "loaded, so the gateway still runs the previous")
    assert "tenants.json" in overview["configProblem"]
    tenants.write_text(good)
    gw.gateway.watcher.check(force=True)
    assert "configProblem" not in requests.get(gw.url + "/health").json()


def test_a_placeholder_key_is_not_probed(make_gateway, upstream):
    placeholder = upstream_entry(upstream, key="sk-ant-replace-me")
    gw = make_gateway([placeholder], load_balancer={"healthCheckEnabled": True,
                                                    "healthCheck": {"interval": 1}})
    real = make_gateway([upstream_entry(upstream, "real")],
                        load_balancer={"healthCheckEnabled": True, "healthCheck": {"interval": 1}})
    wait_until(lambda: any(r.path.endswith("/v1/models") for r in upstream.requests), 5)
    probes = [r for r in upstream.requests if r.path.endswith("/v1/models")]
    assert probes and all(r.headers.get("x-api-key") != "sk-ant-replace-me" for r in probes)
    state = requests.get(gw.url + "/health").json()["upstreams"][0]
    assert "placeholder" in state["configProblem"] and "health-checked" in state["configProblem"]
    assert real  # the real one is probed (the mock saw its probes above)


def test_an_empty_five_hour_window_has_no_reset_time(make_gateway, upstream):
    gw = make_gateway([upstream_entry(upstream)], tenants=[
        {"id": "t", "name": "T", "key": TENANT_KEY, "limits": {"window5h": {"maxUSD": 2}}}])
    headers = {"x-api-key": TENANT_KEY}
    window = requests.get(gw.url + "/usage", headers=headers).json()["limits"]["window5h"]
    assert window["usedUSD"] == 0 and window["resetsAt"] is None  # not "now"
    assert "resets" not in requests.get(gw.url + "/usage/statusline", headers=headers).text
    requests.post(gw.url + "/anthropic/v1/messages", headers=headers, json={
        "model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    wait_until(lambda: requests.get(gw.url + "/usage", headers=headers).json()["limits"]
               ["window5h"]["resetsAt"] is not None)
    assert "resets" in requests.get(gw.url + "/usage/statusline", headers=headers).text
