"""Issue 32, in part: an admin login checks a scrypt hash (~130 ms of CPU) off the event loop, so
a stream keeps its pace while a dozen logins, half of them wrong, are checked."""
import time

import gevent
import gevent.pool
import requests
from werkzeug.security import generate_password_hash

from tests.helpers import TENANT_KEY, upstream_entry
from tests.mock_wire import message, message_events, sse


def test_a_stream_keeps_its_pace_while_logins_are_checked(make_gateway, upstream):
    admin = {"enabled": True, "path": "/admin", "username": "boss",
             "password": generate_password_hash("right-password-1")}
    events = message_events(message("claude-sonnet-4-5", [{"type": "text", "text": "x" * 8}]))
    pings = [sse("ping", {"type": "ping"})] * 60
    upstream.handler = lambda req: upstream.stream(events[:1] + pings + events[1:], delay_s=0.02)
    gw = make_gateway([upstream_entry(upstream)], server={"admin": admin})
    arrivals = []

    def stream():
        with requests.post(gw.url + "/anthropic/v1/messages", stream=True,
                           headers={"x-api-key": TENANT_KEY},
                           json={"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True,
                                 "messages": [{"role": "user", "content": "hi"}]}) as r:
            for _ in r.iter_content(chunk_size=None):
                arrivals.append(time.monotonic())

    def login(i):
        password = "right-password-1" if i % 2 else f"wrong-password-{i}"
        return requests.get(gw.url + "/admin/api/overview", auth=("boss", password)).status_code

    streaming = gevent.spawn(stream)
    gevent.sleep(0.2)
    statuses = gevent.pool.Pool(12).map(login, range(12))
    streaming.join(10)
    assert sorted(statuses) == [200] * 6 + [401] * 6
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(arrivals) > 40 and max(gaps) < 0.1, f"longest pause {max(gaps) * 1000:.0f} ms"
