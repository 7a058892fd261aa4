"""Per-request cost of metering (admission + record + totals refresh) at 0 and 200,000 records.

    python bench/metering_cost.py [--records 200000] [--requests 5000]

Runs the real store, limiter and meter (no HTTP) in a temporary data dir: once with today's file
empty, once with it pre-filled. The two figures should be the same: work per request must not grow
with the size of the day.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoneinfo import ZoneInfo  # noqa: E402

from ccgate.config.settings import TenantConfig, TenantLimits  # noqa: E402
from ccgate.proxy import Outcome, ProxyRequest  # noqa: E402
from ccgate.proxy.types import Answer  # noqa: E402
from ccgate.tenants import Call, Tenant  # noqa: E402
from ccgate.usage.limits import Limiter  # noqa: E402
from ccgate.usage.meter import Meter, MeteringDeps  # noqa: E402
from ccgate.usage.record import iso_utc  # noqa: E402
from ccgate.usage.pricing import PriceBook  # noqa: E402
from ccgate.usage.dayfile import day_path  # noqa: E402
from ccgate.usage.store_file import FileStore  # noqa: E402

BODY = json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4",
                   "content": [{"type": "text", "text": "hello " * 50}], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 2500, "output_tokens": 300,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 40000}
                   }).encode()


def run(prefill: int, n: int) -> float:
    data = Path(tempfile.mkdtemp())
    store = FileStore(data)
    today = datetime.now(timezone.utc).date()
    if prefill:
        path = day_path(data / "usage", "bench", today)
        path.parent.mkdir(parents=True)
        line = json.dumps({"requestId": "x", "tenantId": "bench", "timestamp": iso_utc(time.time()),
                           "model": "claude-sonnet-4", "inputTokens": 10, "outputTokens": 10,
                           "totalTokens": 20, "totalCost": 0.0001, "statusCode": 200}) + "\n"
        path.write_text(line * prefill)
    limiter = Limiter(store, "UTC")
    deps = MeteringDeps(store, PriceBook(None), limiter, ZoneInfo("UTC"))
    limits = TenantLimits(daily_usd=1e9)
    tenant = Tenant(TenantConfig(id="bench", name="bench", key_hash="0" * 64, key=None,
                                 enabled=True, allowed_models=("*",), limits=limits))
    req = ProxyRequest("POST", "/v1/messages", "", [], b"{}", model="claude-sonnet-4-20250514")
    answer = Answer(200, "application/json", False, len(BODY))
    limiter.admit("bench", limits, time.time())  # first read of the day file: start-up cost
    started = time.process_time()
    for i in range(n):
        admission = limiter.admit("bench", limits, time.time())
        call = Call(tenant, "anthropic", str(i), "bench", None, time.time())
        meter = Meter(call, deps, admission, req)
        outcome = Outcome(status=200, upstream="u", completed=True, ttfb_ms=1.0)
        meter.begin(outcome, answer)
        meter.feed(BODY)
        meter.finish(outcome)
    cpu = time.process_time() - started
    assert store.day_totals("bench", today).requests == prefill + n
    return cpu / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--requests", type=int, default=5000)
    args = ap.parse_args()
    for prefill in (0, args.records, 0, args.records):
        print(f"{prefill:>7} records already today: {run(prefill, args.requests):7.1f} µs CPU/request")


if __name__ == "__main__":
    main()
