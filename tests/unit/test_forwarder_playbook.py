"""The failover loop played against scripted upstream answers, no sockets (issue 30): the
forwarder's wire is one ``send`` function, so each case is a script of what each upstream
answers and a check of what the client gets, what the observer sees and what the pool learns
(as mitmproxy's playbook tests its proxy core)."""
from __future__ import annotations

import json

import pytest

from ccgate.config.settings import UpstreamConfig
from ccgate.proxy.attempt import Failed
from ccgate.proxy.forwarder import Forwarder
from ccgate.proxy.types import ProxyRequest, StreamCut
from ccgate.proxy.watch import ClientGone
from ccgate.upstreams.pool import Pool
from tests.mock_wire import message, message_events


class Scripted:
    """An upstream answer from a script (``proxy.types.Exchange``); ``broken`` raises after the
    given chunks, as a connection reset mid-body does."""

    def __init__(self, status=200, chunks=(), content_type="text/event-stream", broken=False):
        self.status = status
        self.headers = {"content-type": content_type}
        self._chunks, self._broken = list(chunks), broken
        self.ended: bool | None = None  # completed, once given back

    def chunks(self, decoded: bool):
        yield from self._chunks
        if self._broken:
            raise ConnectionResetError("reset by peer")

    def interrupt(self) -> None:
        pass

    def end(self, completed: bool) -> None:
        self.ended = completed


class Recorder:
    """An observer that remembers what it was told (``proxy.types.Observer``)."""

    def __init__(self, cut_after: int | None = None):
        self.fed, self.finished, self.answer, self.cut_after = [], [], None, cut_after

    def begin(self, outcome, answer):
        self.answer = answer

    def feed(self, chunk):
        self.fed.append(chunk)
        if self.cut_after is not None and len(self.fed) > self.cut_after:
            raise StreamCut("daily spending limit reached")
        return False

    def settle(self, outcome, whole=False):
        pass

    def finish(self, outcome):
        self.finished.append(outcome)


def upstream(uid: str) -> UpstreamConfig:
    return UpstreamConfig(id=uid, name=uid, url=f"http://{uid}.example", key="sk-ant-scripted-0001",
                          weight=1, enabled=True,
                          auth="auto", read_timeout_s=600)


def play(script: dict, *, stream=True, observer=None, failover=True):
    """Run one request against ``script`` (upstream id -> list of answers, or exceptions, in
    order); what the client got, the observer, and the upstreams asked, in order."""
    asked = []

    def send(up, req, watch):
        asked.append(up.id)
        answer = script[up.id].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    pool = Pool(tuple(upstream(u) for u in script), "round_robin")
    fwd = Forwarder(pool, send=send, failover=failover)
    observer = observer or Recorder()
    relay = fwd.forward(ProxyRequest("POST", "/v1/messages", "", [], b"{}",
                                     model="claude-sonnet-4-5", stream=stream), observer)
    body = b"".join(relay.body)
    relay.body.close()
    return relay, body, observer, asked, pool


EVENTS = message_events(message("claude-sonnet-4-5", [{"type": "text", "text": "Hello!"}]))


def test_an_overloaded_upstream_is_failed_over_and_cooled():
    overloaded = Failed("HTTP 529", status=529, retry_after=3)
    ok = Scripted(chunks=EVENTS)
    relay, body, observer, asked, pool = play({"a": [overloaded], "b": [ok]})
    assert asked == ["a", "b"] and relay.status == 200 and b"message_stop" in body
    assert [a["upstream"] for a in observer.finished[0].attempts] == ["a", "b"]
    assert pool.by_id["a"].cooldown_until > 0 and ok.ended is True
    assert len(observer.finished) == 1 and observer.answer.sse


def test_a_stream_that_breaks_before_its_first_block_fails_over():
    early = Scripted(chunks=EVENTS[:1], broken=True)  # message_start, then a reset
    relay, body, observer, asked, _ = play({"a": [early], "b": [Scripted(chunks=EVENTS)]})
    assert asked == ["a", "b"] and early.ended is False
    assert body.count(b"event: message_start") == 1  # what a held back never reached the client


def test_a_stream_that_breaks_after_it_committed_ends_with_an_error_event():
    late = Scripted(chunks=EVENTS[:4], broken=True)
    relay, body, observer, asked, pool = play({"a": [late], "b": [Scripted(chunks=EVENTS)]})
    assert asked == ["a"]  # committed: no second upstream
    assert body.rstrip().split(b"\n\n")[-1].startswith(b"event: error")
    assert b'"api_error"' in body and late.ended is False
    assert observer.finished[0].upstream_error and pool.by_id["a"].errors == 1


def test_a_cut_stream_ends_with_a_billing_error_event():
    relay, body, observer, _, _ = play({"a": [Scripted(chunks=EVENTS)]},
                                       observer=Recorder(cut_after=3))
    tail = body.rstrip().split(b"\n\n")[-1]
    assert tail.startswith(b"event: error") and b'"billing_error"' in tail
    assert observer.finished[0].cut == "daily spending limit reached"


def test_every_upstream_failing_is_one_answer_of_the_gateway():
    relay, body, observer, asked, _ = play({"a": [Failed("HTTP 529", status=529)],
                                            "b": [Failed("connect timeout")]})
    assert asked == ["a", "b"] and relay.status in (502, 503, 529)
    assert json.loads(body)["type"] == "error" and len(observer.finished) == 1


def test_a_client_gone_while_waiting_is_499_and_nothing_more():
    relay, body, observer, asked, pool = play({"a": [ClientGone()], "b": []})
    assert asked == ["a"] and relay.status == 499
    assert observer.finished[0].client_gone and pool.by_id["a"].in_flight == 0


@pytest.mark.parametrize("failover", [True, False])
def test_without_failover_the_first_answer_is_relayed(failover):
    relay, _, _, asked, _ = play({"a": [Failed("HTTP 500", status=500)],
                                  "b": [Scripted(status=200, chunks=[b"{}"],
                                                 content_type="application/json")]},
                                 stream=False, failover=failover)
    assert asked == (["a", "b"] if failover else ["a"])
