"""Nothing an owner does stalls the event loop (issue 32): gevent's own monitor says so.

A gateway process (``python app.py``) runs with gevent's monitor thread on
(``max_blocking_time`` 20 ms), the first run's scrypt admin password, and a day of 200,000
records already on disk. For ``--seconds``, while 20 streams run (the upstream sends an event
every 20 ms), the mix does what an owner's day does at once:

- the dashboard as a browser polls it: its 6 admin calls every 10 s;
- wrong passwords, one a second (the login throttle answers 429 once it blocks the address);
- a console write every 3 s (a tenant's limit changed and saved);
- a metrics scrape every 15 s;
- a request-detail lookup every 2 s, of a random request of the 200,000-record day.

It first runs the streams alone for the same time (the reference phase, same gateway), then
with the mix, and reports the monitor's count of blocks over 20 ms in the mix phase (with the
frame each was in), the streams' event lateness (p99, and its ratio to the reference phase) and
each call's latency.

    python bench/event_loop_mix.py [--seconds 60] [--record] [--out DIR]

``--record`` appends the result to bench/RESULTS.md; ``--out`` writes it to DIR/mix.md and
DIR/mix.json (``bench/run.sh`` does, for its report).
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ccgate.usage.record import iso_utc  # noqa: E402
from tests.e2e.servers import free_port, wait_up  # noqa: E402
from tests.helpers import upstream_entry, write_config  # noqa: E402
from tests.mock_upstream import MockUpstream  # noqa: E402
from tests.mock_wire import message, message_events, sse  # noqa: E402

KEY = "sk-ccg-bench-loop-000000000000"
ADMIN = ("boss", "first-run-password-1")
MODEL = "claude-sonnet-4-5"
DAY_RECORDS = 200_000
PACE_S = 0.02


def big_day(data: Path) -> list[str]:
    """Today's file of ``DAY_RECORDS`` records for the tenant; their request ids."""
    now = time.time()
    day = datetime.now(timezone.utc)
    path = data / "usage" / "mum" / day.strftime("%Y-%m") / (day.strftime("%Y-%m-%d") + ".json")
    path.parent.mkdir(parents=True)
    ids, lines = [], []
    for i in range(DAY_RECORDS):
        start = now - 3600 + i * 3600 / DAY_RECORDS
        rid = f"{int(start):08x}{i:08x}"
        ids.append(rid)
        lines.append(json.dumps({
            "requestId": rid, "tenantId": "mum", "timestamp": iso_utc(start), "model": MODEL,
            "inputTokens": 100, "outputTokens": 50, "totalTokens": 150, "totalCost": 0.001,
            "duration": 900, "statusCode": 200, "upstream": "up", "api": "anthropic",
            "userAgent": "claude-cli/2.1.197 (external, cli)"}, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    return ids


def timed(log: dict, name: str, fn) -> None:
    started = time.monotonic()
    try:
        fn()
    except requests.RequestException:
        log.setdefault(name + " errors", []).append(1)
    log.setdefault(name, []).append((time.monotonic() - started) * 1000)


def every(seconds: float, until: float, fn) -> None:
    while time.monotonic() < until:
        fn()
        gevent.sleep(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--out", type=Path, help="also write mix.md and mix.json there "
                        "(bench/run.sh's report reads them)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccgate-loop-"))
    upstream = MockUpstream("up").start()
    events = message_events(message(MODEL, [{"type": "text", "text": "x" * 8}]))
    pings = [sse("ping", {"type": "ping"})] * int(8 / PACE_S)
    upstream.handler = lambda req: upstream.stream(events[:1] + pings + events[1:],
                                                   delay_s=PACE_S)
    admin = {"enabled": True, "path": "/admin", "username": ADMIN[0],
             "password": generate_password_hash(ADMIN[1])}  # scrypt, as the first run writes
    config = write_config(work / "config", [upstream_entry(upstream)], server={
        "server": {"port": 3000}, "admin": admin, "metrics": {"token": "scrape-token-1"}},
        tenants=[{"id": "mum", "key": KEY, "limits": {"daily": {"maxUSD": 10_000}}}])
    ids = big_day(work / "data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GEVENT_MONITOR_THREAD_ENABLE": "true",
           "GEVENT_MAX_BLOCKING_TIME": "0.02"}
    stderr = open(work / "stderr.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config-dir", str(config),
                             "--data-dir", str(work / "data"), "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=stderr)
    try:
        wait_up(url + "/health", timeout=60)
        requests.get(url + "/usage", headers={"x-api-key": KEY})  # the day's totals, once
        alone = run_mix(url, ids, args.seconds, mix=False)["stream event lateness"]
        stderr.flush()
        before = (work / "stderr.log").read_text()
        results = run_mix(url, ids, args.seconds)
        stderr.flush()
        # the mix phase's reports only: not the reference phase's, not the shutdown's
        text = (work / "stderr.log").read_text()[len(before):]
    finally:
        proc.terminate()
        proc.wait(30)
        upstream.stop()
        stderr.close()
    blocks = text.count("appears to be blocked")
    frames = re.findall(r'File "[^"]*/(ccgate/[^"]+)", line \d+, in (\w+)', text)
    report(args, results, blocks, frames, alone)


def run_mix(url: str, ids: list[str], seconds: float, mix: bool = True) -> dict:
    """Streams for ``seconds``, with the owner's calls alongside when ``mix``."""
    log: dict = {}
    gaps: list[float] = []
    until = time.monotonic() + seconds
    origin = {"origin": url}

    def stream():
        while time.monotonic() < until:
            last = None
            with requests.post(url + "/anthropic/v1/messages", stream=True,
                               headers={"x-api-key": KEY},
                               json={"model": MODEL, "max_tokens": 32000, "stream": True,
                                     "messages": [{"role": "user", "content": "hi"}]}) as r:
                for _ in r.iter_content(chunk_size=None):
                    now = time.monotonic()
                    if last is not None:
                        gaps.append(max(0.0, now - last - PACE_S) * 1000)
                    last = now

    def dashboard():
        for path in ("/overview", "/tenants", "/upstreams", "/requests?limit=100", "/prices",
                     "/batches"):
            timed(log, "dashboard call", lambda: requests.get(url + "/admin/api" + path,
                                                              auth=ADMIN, timeout=30))

    def wrong():
        timed(log, "wrong password", lambda: requests.get(
            url + "/admin/api/overview", auth=(ADMIN[0], f"guess-{random.random()}"), timeout=30))

    def console_write():
        limit = random.choice([5000, 10_000])
        timed(log, "console write", lambda: requests.patch(
            url + "/admin/api/tenants/mum", auth=ADMIN, headers=origin, timeout=30,
            json={"limits": {"daily": {"maxUSD": limit}}}))

    def scrape():
        timed(log, "metrics scrape", lambda: requests.get(
            url + "/metrics", headers={"authorization": "Bearer scrape-token-1"}, timeout=30))

    def detail():
        rid = random.choice(ids)
        timed(log, "request detail", lambda: requests.get(
            url + f"/admin/api/requests/{rid}", auth=ADMIN, timeout=30))

    jobs = [gevent.spawn(stream) for _ in range(20)]
    if mix:
        jobs += [gevent.spawn(every, 10, until, dashboard), gevent.spawn(every, 1, until, wrong),
                 gevent.spawn(every, 3, until, console_write),
                 gevent.spawn(every, 15, until, scrape), gevent.spawn(every, 2, until, detail)]
    gevent.joinall(jobs, timeout=seconds + 60)
    log["stream event lateness"] = gaps
    return log


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def report(args, results: dict, blocks: int, frames: list, alone: list[float]) -> None:
    mixed, ref = pct(results["stream event lateness"], 0.99), pct(alone, 0.99)
    lines = [f"## Event loop under the owner's mix (issue 32), "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
             f"`python bench/event_loop_mix.py --seconds {args.seconds:g}`: 20 streams "
             f"(an event every 20 ms), the dashboard's 6 calls every 10 s with the first run's "
             f"scrypt password, a wrong password every second, a console write every 3 s, a "
             f"metrics scrape every 15 s, a request-detail lookup every 2 s on a day of "
             f"{DAY_RECORDS:,} records.", "",
             f"**gevent monitor (max_blocking_time 20 ms): {blocks} block(s) reported.**", "",
             f"Stream event lateness p99: {mixed:.1f} ms with the mix, {ref:.1f} ms with the "
             f"streams alone (the same time just before, same gateway): "
             f"{mixed / max(ref, 0.1):.2f}x.",
             ""]
    if frames:
        seen = sorted({f"{path}:{fn}" for path, fn in frames})[:10]
        lines += ["Frames in the reports: " + ", ".join(f"`{s}`" for s in seen), ""]
    lines += ["| what | n | p50 ms | p99 ms | max ms | errors |", "|---|---|---|---|---|---|"]
    for name, values in sorted(results.items()):
        if name.endswith(" errors"):
            continue
        errors = len(results.get(name + " errors", []))
        lines.append(f"| {name} | {len(values)} | {pct(values, 0.5):.1f} | "
                     f"{pct(values, 0.99):.1f} | {max(values, default=0):.1f} | {errors} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a") as f:
            f.write("\n" + text)
    if args.out:
        (args.out / "mix.md").write_text(text)
        (args.out / "mix.json").write_text(json.dumps({
            "blocks": blocks, "lateness_p99_ms": mixed, "alone_p99_ms": ref,
            "ratio": mixed / max(ref, 0.1)}))


if __name__ == "__main__":
    main()
