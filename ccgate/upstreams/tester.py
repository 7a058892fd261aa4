"""The console's "test" button: probe an upstream now and send it one 1-token message.

Used for saved upstreams and for ones being filled in before they are saved. The 1-token call
costs the operator a fraction of a cent and is not a tenant's usage: it writes no record.
"""
from __future__ import annotations

import time

import requests

from ..core.errors import ANTHROPIC_VERSION, parse_anthropic_error
from ..core.redact import replace_secrets
from ..config.settings import CONNECT_TIMEOUT_S, UpstreamConfig
from .health import probe_verdict

DEFAULT_TEST_MODEL = "claude-haiku-4-5"  # the cheapest current model, when the upstream names none
TEST_TIMEOUT_S = 30.0


def model_for_test(config: UpstreamConfig, asked: str | None) -> str:
    """The model to ask for: the one given, else the first the upstream lists by exact name."""
    if asked:
        return asked
    for pattern in config.models or ():
        if not any(c in pattern for c in "*?["):
            return pattern
    return DEFAULT_TEST_MODEL


def _reason(resp: requests.Response, key: str) -> str:
    message = parse_anthropic_error(resp.content[:65536]).message
    text = f"HTTP {resp.status_code}" + (f": {message}" if message else "")
    return replace_secrets(text, (key,))


def try_upstream(config: UpstreamConfig, health_path: str, model: str | None) -> dict:
    """``{"ok", "status", "latencyMs", "reason", "model", "probe"}`` for one upstream, now."""
    session = requests.Session()
    session.trust_env = False
    headers = {"anthropic-version": ANTHROPIC_VERSION, **config.auth_headers}
    timeout = (CONNECT_TIMEOUT_S, TEST_TIMEOUT_S)
    model = model_for_test(config, model)
    sent = config.model_map.get(model, model)
    try:
        try:
            probe = session.get(config.url + health_path, headers=headers, timeout=timeout,
                                allow_redirects=False)
            ok, why = probe_verdict(probe.status_code)
            probe_result = {"ok": ok, "status": probe.status_code, "reason": why}
        except requests.RequestException as e:
            ok, why = probe_verdict(None, f"unreachable ({type(e).__name__})")
            probe_result = {"ok": False, "status": None, "reason": why}
        started = time.monotonic()
        try:
            resp = session.post(config.url + "/v1/messages", headers=headers, timeout=timeout,
                                allow_redirects=False, json={
                                    "model": sent, "max_tokens": 1,
                                    "messages": [{"role": "user", "content": "ping"}]})
        except requests.RequestException as e:
            return {"ok": False, "status": None, "latencyMs": None, "model": sent,
                    "reason": f"unreachable ({type(e).__name__})", "probe": probe_result}
        latency = round((time.monotonic() - started) * 1000)
        answered = resp.status_code == 200
        return {"ok": answered, "status": resp.status_code, "latencyMs": latency, "model": sent,
                "reason": None if answered else _reason(resp, config.key), "probe": probe_result}
    finally:
        session.close()
