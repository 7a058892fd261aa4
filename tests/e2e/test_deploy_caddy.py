"""Issue 35: the shipped ``deploy/Caddyfile`` in front of the gateway, as the https profile runs it.

Caddy (Debian's package; ``.ci/run`` installs it) serves plain HTTP on loopback here: the site
address comes from ``DOMAIN``, so ``DOMAIN=http://127.0.0.1:PORT`` turns automatic HTTPS off and
nothing else in the file changes. Checked: SSE passes event by event (``flush_interval -1``), a
long stream arrives byte for byte and is metered, and a client cannot spoof ``X-Forwarded-For``
past Caddy to escape the per-address lock-out (Caddy replaces the header from an untrusted peer).
"""
import shutil
import subprocess
import time

import pytest
import requests

from tests.e2e.servers import free_port, wait_up
from tests.helpers import ROOT, TENANT_KEY, upstream_entry
from tests.mock_wire import message, message_events

CADDY = shutil.which("caddy")
MODEL = "claude-sonnet-4-5"


@pytest.fixture
def caddy_gw(make_gateway, upstream, tmp_path):
    """(url through Caddy, the gateway): the gateway trusts Caddy's address, as compose sets it."""
    if CADDY is None:
        pytest.skip("!!! CADDY TEST SKIPPED: apt-get install caddy (.ci/run does) !!!")
    gw = make_gateway([upstream_entry(upstream)],
                      server={"server": {"trustedProxies": ["127.0.0.1"]}})
    port = free_port()
    # The shipped file, imported unchanged; only the admin endpoint is off (tests run in parallel).
    wrapper = tmp_path / "Caddyfile"
    wrapper.write_text("{\n\tadmin off\n}\nimport " + str(ROOT / "deploy" / "Caddyfile") + "\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "d"),
           "XDG_CONFIG_HOME": str(tmp_path / "c"), "DOMAIN": f"http://127.0.0.1:{port}",
           "CCGATE_UPSTREAM": f"127.0.0.1:{gw.server.server_port}"}
    log = tmp_path / "caddy.log"
    with open(log, "wb") as out:
        caddy = subprocess.Popen([CADDY, "run", "--config", str(wrapper), "--adapter",
                                  "caddyfile"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_up(url + "/health", timeout=30)
        except AssertionError:
            raise AssertionError(f"caddy did not come up (exit {caddy.poll()}): "
                                 f"{log.read_text()[-3000:]}") from None
        yield url, gw
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)


def events_with_arrival(response) -> list[tuple[float, bytes]]:
    arrivals, buf = [], b""
    for chunk in response.iter_content(chunk_size=None):
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            arrivals.append((time.monotonic(), event))
    return arrivals


def test_sse_passes_caddy_event_by_event(caddy_gw, upstream):
    url, _ = caddy_gw
    upstream.event_delay_s = 0.2
    r = requests.post(url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": MODEL, "max_tokens": 32000, "stream": True,
                            "messages": [{"role": "user", "content": "x"}]}, stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    arrivals = events_with_arrival(r)
    names = [event.split(b"\n")[0] for _, event in arrivals]
    assert names[0] == b"event: message_start" and names[-1] == b"event: message_stop"
    times = [t for t, _ in arrivals]
    # Each event after the commit point arrives on its own, about 200 ms after the one before:
    # a buffering proxy would deliver them together.
    gaps = [b - a for a, b in zip(times[2:], times[3:])]
    assert len(gaps) >= 4
    assert all(0.12 < g < 0.4 for g in gaps), gaps


def test_a_long_stream_arrives_whole_and_is_metered(caddy_gw, upstream):
    url, _ = caddy_gw
    text = "".join(f"line {i}: " + "z" * 60 + "\n" for i in range(3000))  # ~200 KB of deltas
    events = message_events(message(MODEL, [{"type": "text", "text": text}],
                                    input_tokens=1200, output_tokens=31000))
    upstream.handler = lambda req: upstream.stream(events)
    r = requests.post(url + "/anthropic/v1/messages", headers={"x-api-key": TENANT_KEY},
                      json={"model": MODEL, "max_tokens": 32000, "stream": True,
                            "messages": [{"role": "user", "content": "x"}]}, stream=True)
    body = b"".join(r.iter_content(chunk_size=None))
    assert body == b"".join(events)
    today = requests.get(url + "/usage", headers={"x-api-key": TENANT_KEY}).json()["today"]
    assert today["requests"] == 1 and today["outputTokens"] == 31000


def test_spoofed_forwarded_for_does_not_escape_the_lockout(caddy_gw):
    url, _ = caddy_gw
    for i in range(31):  # the key throttle blocks an address after 30 failures a minute
        r = requests.get(url + "/anthropic/v1/models", headers={
            "x-api-key": f"sk-ccg-wrong-{i}", "X-Forwarded-For": f"10.9.{i}.1"})
        assert r.status_code in (401, 429)
    # Caddy put the real peer in X-Forwarded-For each time, so that one address is blocked, and a
    # right key it never used before is refused like a wrong one.
    r = requests.get(url + "/anthropic/v1/models", headers={
        "x-api-key": TENANT_KEY, "X-Forwarded-For": "10.9.99.1"})
    assert r.status_code == 429, r.text
    assert r.json()["error"]["type"] == "rate_limit_error" and "retry-after" in r.headers
