"""A batch's results metered line by line as they pass (issue 31), without sockets: lines split
anywhere across chunks, lines an earlier download billed, errored results, a last line without
its newline, a download cut short."""
import json
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from ccgate.config.items import tenant_config
from ccgate.proxy.types import Outcome
from ccgate.tenants import Call, Tenant
from ccgate.usage.batch_meter import BatchResultsMeter
from ccgate.usage.limits import Admission
from ccgate.usage.meter import MeteringDeps
from ccgate.usage.pricing import PriceBook

SONNET_45 = "claude-sonnet-4-5-20250929"


def result(custom_id: str, ok: bool = True) -> bytes:
    body = ({"type": "succeeded", "message": {"model": SONNET_45, "usage": {
        "input_tokens": 1000, "output_tokens": 1000}}} if ok else {"type": "errored"})
    return json.dumps({"custom_id": custom_id, "result": body}).encode() + b"\n"


class Run:
    """One download through a BatchResultsMeter, with what it records and keeps."""

    def __init__(self, billed: int = 0):
        self.appended, self.progress, self.released = [], [], []
        store = SimpleNamespace(append=lambda record, day: self.appended.append(record))
        limiter = SimpleNamespace(release=lambda admission, spent: self.released.append(spent))
        deps = MeteringDeps(store, PriceBook(None), limiter, ZoneInfo("UTC"))
        tenant = Tenant(tenant_config({"id": "t1", "key": "k" * 20}, "UTC"))
        call = Call(tenant, "anthropic", "rid", "ua", "127.0.0.1", 0.0)
        self.meter = BatchResultsMeter(call, deps, Admission("t1", None), "msgbatch_1", billed,
                                       lambda lines, whole: self.progress.append((lines, whole)))
        self.outcome = Outcome(200, "up1")
        self.meter.begin(self.outcome, None)

    def download(self, body: bytes, cut: int, completed: bool = True) -> "Run":
        for i in range(0, len(body), cut):
            self.meter.feed(body[i:i + cut])
        self.outcome.completed = completed
        self.meter.finish(self.outcome)
        return self


BODY = result("a") + result("b", ok=False) + result("c") + result("d").rstrip(b"\n")


@pytest.mark.parametrize("cut", [1, 7, 64, 10_000])
def test_every_succeeded_result_billed_once_at_half_price_however_split(cut):
    run = Run().download(BODY, cut)
    assert [r["requestId"] for r in run.appended] == ["msgbatch_1/a", "msgbatch_1/c",
                                                      "msgbatch_1/d"]
    assert all(r["batch"] is True for r in run.appended)
    assert sum(r["totalCost"] for r in run.appended) == pytest.approx(3 * 0.009)
    assert run.progress == [(4, True)] and run.released == [pytest.approx(3 * 0.009)]


def test_a_later_download_bills_only_lines_not_billed_before():
    first = Run().download(BODY[:len(result("a")) + 5], 50, completed=False)  # cut mid-line
    assert [r["requestId"] for r in first.appended] == ["msgbatch_1/a"]
    assert first.progress == [(1, False)]
    again = Run(billed=1).download(BODY, 33)
    assert [r["requestId"] for r in again.appended] == ["msgbatch_1/c", "msgbatch_1/d"]
    assert Run(billed=4).download(BODY, 33).appended == []


def test_an_error_answer_bills_nothing():
    run = Run()
    run.outcome.status = 404
    run.meter.feed(result("a"))
    run.meter.finish(run.outcome)
    assert run.appended == [] and run.progress == []
