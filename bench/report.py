"""Turn one bench/run.sh session into bench/RESULTS.md (Markdown on stdout)."""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from ratios import compare  # bench/ is this script's directory

PROFILE = """\
### Where the CPU went, and what was done (issue 19)
`py-spy record -f raw` on the gateway and on `floor_app.py` under the same non-streaming load
(wrk -c64, 15 s each, same session), in µs of wall time per request of the request loop:

| where | gateway before | gateway after | floor |
|---|---|---|---|
| the whole request (`WSGIHandler.handle`) | 1703 | 1301 | 818–857 |
| `HTTPAdapter.send` (the stack's upstream call) | 649 | 493 | 425–445 |
| request head: our strict reader + gevent's parser | 107 + 80 | 27 + 0 | 33 |
| relay of the answer (`RelayBody._generate`) | 234 | 204 | — |
| of which the usage record (`Meter.settle`) | 164 | 138 | — |
| body read + JSON parse | 41 + 52 | 19 + 39 | — |
| cyclic garbage collection | every request's objects | 2.5 µs/request | — |

Found and changed, in the order they mattered (each measured by switching it off or on in the
same run, CPU per request as a ratio to the floor):
- **The log writer took the GIL from the request loop for every request** (0.33× of the floor):
  its thread woke for each queued line. It now waits 50 ms after a line arrives and writes the
  batch; the same lines, one wake-up per batch. This wait also inflated every stack frame above
  (the stack's own `HTTPAdapter.send` measured 649 µs instead of ~450).
- **Every request's objects were one reference cycle** (relay ↔ client watch ↔ Flask response ↔
  access-log callback ↔ libev watcher), ~112 objects freed only by the cyclic collector (600 MB
  in a minute with the collector off). The relay and the watch unlink at cleanup; a request's
  objects are freed by reference counting the moment the server drops the body.
- **gevent parsed every request head a second time** with `email.feedparser` after the strict
  reader of `ccgate/server.py` had split and checked it: the checked lines are now handed to
  gevent as its `headers` object (`RequestHead`).
- Timers: head and keep-alive `gevent.Timeout`s are made once per connection and restarted per
  request; a body with `Content-Length` is read without a second, empty read.
- Metering: one `fstat` per append (size and link count under the lock), one JSON encoder,
  record values read once for the day's, model's and upstream's totals, timestamps formatted
  (and a record's minute parsed) once per second, the local day converted once per minute,
  Prometheus values on the OS lock they were written for (gevent's patching had made each `inc`
  a Python-level lock).
- Streams: a whole SSE event (the usual shape) is parsed by one regular expression, a delta
  counted as bytes without making an `Event`; the redactor skips its split-secret search when
  data ends in a newline; secret stand-ins and an upstream's credentials are worked out once.
- Flask's context proxies are bound once per hook and view (44 proxy lookups per request before).
- **A 330 ms stall 30 s after start**: a day file this process had written from its first line
  was still read back whole (25,000 records in the benchmark) by the watchdog's first budget
  refresh, in the event loop. wrk's single-connection p99 showed it as 226 ms (wrk spreads one
  stall over the requests it held up); the store now counts such a day as it writes it, and the
  p99 is 1.9 ms.

Earlier in issue 19: access lines queued as fields (no `LogRecord`), no greenlet per request
for the client watch, no `dataclasses.asdict`, cached Prometheus children, the duplicate-key
proof in one regular-expression pass, `gc.freeze()` at start-up.

Third round (measured with instruction counts under callgrind, gateway and floor in the same
session, which repeat within 1-2 % where wall-clock CPU drifts ±5 %, then confirmed with wall
CPU against the floor):
- **orjson** writes usage records and access lines (a record: 7 -> 0.7 µs) and parses request
  bodies (50 KB: 40 -> 17 µs); the usage record's settle went from 48 to 34 µs in isolation.
  It also fixed a fail-open: a lone surrogate in `metadata.user_id` made the record unwritable.
- **Per SSE event**: a chunk that is one whole `content_block_delta` starting with the previous
  delta's bytes up to its content is counted from its length alone (the stream meter went from
  57 to 31 µs per 26-event stream); the meter's per-chunk checks are two comparisons.
- One before- and one after-request hook instead of four; the settle inside the relay passes a
  flag instead of copying the outcome with `dataclasses.replace`; one cached tuple of Prometheus
  children per kind of request; urllib3's chunk generator iterated directly; fewer Python calls
  per request (183 -> 170).

Fourth round (instruction counts under callgrind, gateway and floor in the same session; per
request, wrk -c4; the machine's wall-clock CPU drifted ±15 % between runs this round):
- **`bytes in bytes` raised an exception every time**: CPython first tries the needle as an
  integer, formats a `TypeError` and clears it (~2,000 instructions). The redactor did this
  twice per SSE event; it now uses `partition`. ~75k instructions less per 26-event stream.
- The whole-event pattern reads `.*` on chunks without a CR instead of `[^\\r\\n]*` (half the
  cost); one-event chunks that carry no usage (`ping`, block start/stop, `message_stop`) skip
  the parser.
- The `\\u` escape search visits backslashes by `memchr` first (one per 4 KB of body) before
  reading every byte: a 50 KB body with its escapes at the end costs 250k instructions less.
- Prometheus updates are counted in batches of 32 and at every scrape (measured in the running
  gateway: 11.7 -> 7.5 µs per request); CORS headers only for requests that carry `Origin`;
  the upstream's content type and encoding read once; the client's headers read from the
  environ in one pass; a kept-alive connection's next head has one timer and no `peek`.
- Tried and reverted: young-generation GC threshold 100,000 (1 % less CPU on streams, but the
  one collection after 500 streams opened paused them: lateness p99 60-84 ms instead of 23).

Instructions per request, this round's start -> end (floor in the same session): streaming
5,019k -> 4,695k (floor 3,811k: 1.32× -> 1.23×), non-streaming 3,240k -> 3,115k (floor 2,700k:
1.20× -> 1.15×), 50 KB body 4,045k -> 3,688k (floor 2,752k: 1.47× -> 1.34×). At 64 connections
the streaming ratio is the same (5,498k vs 4,505k: 1.22×). Wall-clock CPU, which the targets
use, has come out higher than these ratios for streams (1.25-1.37× over this round's six
runs): user CPU at 64 streams is 1.3-1.5× the floor's where instructions are 1.22×, so the
gateway's larger working set (cache misses, not more work) is what is left there.

What is left: a 50 KB body costs ~630k instructions to parse (orjson ~320k including its two
copies of the body) and to prove free of duplicate keys (one pass of the key pattern, ~310k, at
~0.3 ns a byte); the floor never reads the body. Every faster proof tried either reads the body
at the same speed (`bytes.count` per key is slower: its skip table misses on prose) or does not
hold for bodies that are not compact JSON (the harness body is not).

Fifth round (instruction counts under callgrind and wall-clock CPU alternating with the floor,
same session):
- **Chunked answers are read by our own `Dechunker`** (`ccgate/proxy/chunked.py`, pure).
  urllib3's `read_chunked` took one chunk per step (`readline`, two `_safe_read`s, a decode
  call, a generator step), and the server then wrote each chunk to the client on its own:
  about a dozen Python calls and a `send` for every SSE event. The relay now takes whatever the
  socket has received, undoes the framing in one pass and writes it in one piece. Nothing waits
  for more: an event that arrived alone, even half of one, goes out at once (a recorded stream
  split at every byte gives back exactly the payload bytes that arrived). Streaming:
  4,671k -> 3,836k instructions per request (floor 3,711k: 1.26x -> 1.03x); wall-clock CPU
  0.88-0.99x the floor's in this round's runs.
- The read waits in the socket reader's own buffer (`peek`), not in a fresh 64 KB buffer per
  `read1`: resident memory at 500 open streams stays at 95 MB (102 MB without).
- GC: young generation 10,000 objects and the middle one every 40 young collections (was
  20,000 and 20): the same 400,000 allocations between middle collections, and with 500 streams
  open a young collection pauses them for at most 4.4 ms instead of 5-17 ms (`gc.callbacks`).
  Instructions per request are the same; wall-clock CPU the same within the machine's noise.
- `bench/run.sh` takes three rounds by default: the median of two rounds is their mean, and one
  slow minute of this machine decided it (a round at 1.43x, the next at 1.17x, same code).

What is left: the 50 KB body. In the running gateway its parse costs about 80 µs (switching the
parse off: 0.86-0.96x), twice the 42 µs it takes in a loop (orjson 18, the key proof 19, the
`\\u` search 4): the body and orjson's two copies of it are cold in the cache. Every
pure-Python alternative measured slower (memchr hops over quotes 22 µs, a trie-shaped key
pattern 18 µs, `bytes.count` per key 149 µs), and freeing the parsed document right after the
model check changed nothing measurable.
"""


def issue34_rows(out: Path, verdict) -> list[tuple[str, str, str]]:
    """The issue-34 targets: workers, Redis, the owner's mix (absent parts are reported so)."""
    rows = []
    if (out / "r1-w2").exists():
        w = compare(out, "w1", "w2")
        rps, cpu = w["nonstream_rps"], w["nonstream_cpu_us_per_req"]
        rows += [("`--workers 2`: non-streaming throughput ≥ 1.3× one worker's",
                  f"{rps[1]:.0f} vs {rps[0]:.0f} req/s: {rps[2]:.2f}× (streams "
                  f"{w['stream_rps'][2]:.2f}×)", verdict(rps[2] >= 1.3)),
                 ("`--workers 2`: CPU per request ≤ 1.15× one worker's",
                  f"{cpu[1]:.0f} vs {cpu[0]:.0f} µs: {cpu[2]:.2f}× (streams "
                  f"{w['stream_cpu_us_per_req'][2]:.2f}×)", verdict(cpu[2] <= 1.15))]
    if (out / "r1-redis").exists():
        s = compare(out, "file", "redis")
        worst = max(s["nonstream_cpu_us_per_req"][2], s["stream_cpu_us_per_req"][2])
        rows.append(("Redis store: CPU per request ≤ 1.3× the file store's",
                     f"{s['nonstream_cpu_us_per_req'][2]:.2f}× non-streaming, "
                     f"{s['stream_cpu_us_per_req'][2]:.2f}× streaming", verdict(worst <= 1.3)))
    if (out / "mix.json").exists():
        mix = json.loads((out / "mix.json").read_text())
        rows += [("owner's mix: stream event lateness p99 ≤ 1.2× without it",
                  f"{mix['lateness_p99_ms']:.1f} vs {mix['alone_p99_ms']:.1f} ms: "
                  f"{mix['ratio']:.2f}×", verdict(mix["ratio"] <= 1.2)),
                 ("owner's mix: gevent monitor blocks over 20 ms", str(mix["blocks"]),
                  verdict(mix["blocks"] == 0))]
    return rows


def metrics(path: Path) -> dict:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            m = json.loads(line)
            out[m["metric"]] = m["value"]
    return out


def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def fmt(v, spec="{:.0f}"):
    return "—" if v is None else spec.format(v)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1] if Path("/proc/meminfo").exists() else "?"
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return (f"{cores} cores ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, Linux "
            f"{platform.release()}, Python {platform.python_version()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--k2000", type=int, required=True)
    args = ap.parse_args()
    out = Path(args.out)
    runs = {name: [metrics(out / f"r{r}-{name}" / "metrics.jsonl") for r in range(1, args.rounds + 1)]
            for name in ("direct", "floor", "ccgate", "floor50k", "body50k", "flat", "empty")}

    def med(name, metric):
        return median([m.get(metric) for m in runs[name]])

    def ratio(metric, name="ccgate", ref="floor"):
        """Median of the same-round ratios: the machine's speed drifts between rounds."""
        pairs = [(a.get(metric), b.get(metric)) for a, b in zip(runs[name], runs[ref])]
        return median([a / b for a, b in pairs if a and b])

    k = metrics(out / "k2000" / "metrics.jsonl")
    flat = {m: med("flat", m) for m in ("nonstream_cpu_us_per_req", "nonstream_rps")}
    empty = {m: med("empty", m) for m in ("nonstream_cpu_us_per_req", "nonstream_rps")}
    openai = json.loads((out / "openai.json").read_text()) if (out / "openai.json").exists() else {}
    added_p50 = median([(c.get("single_p50_ms") or 0) - (f.get("single_p50_ms") or 0)
                        for c, f in zip(runs["ccgate"], runs["floor"])])
    flat_ratio = ratio("nonstream_cpu_us_per_req", "flat", "empty")

    def verdict(ok):
        return "met" if ok else "**missed**"

    ns, st, big = ratio("nonstream_cpu_us_per_req"), ratio("stream_cpu_us_per_req"), \
        ratio("nonstream_cpu_us_per_req", "body50k", "floor50k")
    rows = [
        ("non-streaming CPU per request ≤ 1.3× the floor's",
         f"{fmt(med('ccgate', 'nonstream_cpu_us_per_req'))} vs {fmt(med('floor', 'nonstream_cpu_us_per_req'))} µs: "
         f"{fmt(ns, '{:.2f}')}×", verdict(ns is not None and ns <= 1.3)),
        ("streaming CPU per request ≤ 1.3× the floor's",
         f"{fmt(med('ccgate', 'stream_cpu_us_per_req'))} vs {fmt(med('floor', 'stream_cpu_us_per_req'))} µs: "
         f"{fmt(st, '{:.2f}')}×", verdict(st is not None and st <= 1.3)),
        ("single connection p50 ≤ the floor's + 0.25 ms",
         f"{fmt(med('ccgate', 'single_p50_ms'), '{:.2f}')} vs {fmt(med('floor', 'single_p50_ms'), '{:.2f}')} ms "
         f"(+{fmt(added_p50, '{:.2f}')})", verdict(added_p50 is not None and added_p50 <= 0.25)),
        ("500 slow streams all complete", fmt(med("ccgate", "k_streams_completed")),
         verdict(med("ccgate", "k_streams_completed") == 500)),
        ("500 slow streams: event lateness p99 ≤ 30 ms",
         f"{fmt(med('ccgate', 'k_event_lateness_p99_ms'))} ms (floor {fmt(med('floor', 'k_event_lateness_p99_ms'))})",
         verdict((med("ccgate", "k_event_lateness_p99_ms") or 1e9) <= 30)),
        ("500 slow streams: RSS peak ≤ 120 MB",
         f"{fmt(med('ccgate', 'k_rss_peak_mb'))} MB (floor {fmt(med('floor', 'k_rss_peak_mb'))})",
         verdict((med("ccgate", "k_rss_peak_mb") or 1e9) <= 120)),
        (f"{args.k2000} slow streams complete", fmt(k.get("k_streams_completed")),
         verdict(k.get("k_streams_completed") == args.k2000)),
        ("no buffering", fmt(med("ccgate", "stream_buffering_detected")) + " (0 = none)",
         verdict(med("ccgate", "stream_buffering_detected") == 0)),
        ("flat cost: 200,000 records today, CPU within 10 %",
         f"{fmt(flat.get('nonstream_cpu_us_per_req'))} vs {fmt(empty.get('nonstream_cpu_us_per_req'))} µs "
         f"(empty file, same rounds): {fmt(flat_ratio, '{:.2f}')}×",
         verdict(flat_ratio is not None and flat_ratio <= 1.1)),
        ("50 KB body CPU ≤ 1.3× the floor's with the same body",
         f"{fmt(med('body50k', 'nonstream_cpu_us_per_req'))} vs {fmt(med('floor50k', 'nonstream_cpu_us_per_req'))} µs: "
         f"{fmt(big, '{:.2f}')}×", verdict(big is not None and big <= 1.3)),
    ]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# CCGate benchmark results\n\nTaken {now} on {machine()}.\n")
    print("Command (from the repository root, with the shared harness beside it):\n")
    print(f"```sh\nbash bench/run.sh --rounds {args.rounds} --duration {args.duration}\n```\n")
    print("Every number below comes from that one run. Each round measures `direct` (the mock "
          "upstream itself), `floor` (`../shared/bench/floor_app.py`: Flask + gevent pywsgi + "
          "`requests` relaying, nothing else, the least this stack can do) and `ccgate` (one "
          "process, auth, limits, metering, access log and metrics on), one after the other; ratios "
          "are medians of same-round ratios. This shared machine's speed drifts several-fold "
          "between sessions: only the ratios carry over.\n")
    print("## Targets (issue 19)\n\n| target | measured | |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    print("\n## Targets (issue 34): every core, Redis, the owner's mix\n\n"
          "| target | measured | |\n|---|---|---|")
    for r in issue34_rows(out, verdict):
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    print("\nWorkers: `measure w1` and `measure w2` alternate in each round (the harness counts "
          "the CPU of the whole process tree: supervisor and workers); the mock upstream and wrk "
          "share the same two cores. Redis: a private redis-server, its own CPU not counted.\n")
    if (out / "mix.md").exists():
        print((out / "mix.md").read_text().replace("## Event loop", "### Event loop"))
    print("\nFor scale, the Node CCGate on the same harness (another run, the issue's figures): "
          "4,560 µs per request, 247 req/s, 4.09 ms single-connection p50.\n")
    print("## Harness summary (medians, ratios to `floor` in the same round)\n")
    print((out / "summary.md").read_text() if (out / "summary.md").exists() else "(missing)")
    print("\n## Extra runs\n")
    print("| run | non-stream req/s | CPU µs/req | notes |\n|---|---|---|---|")
    print(f"| empty usage file (median of rounds) | {fmt(empty.get('nonstream_rps'))} | {fmt(empty.get('nonstream_cpu_us_per_req'))} | |")
    print(f"| 200,000 records already today (median of rounds) | {fmt(flat.get('nonstream_rps'))} | "
          f"{fmt(flat.get('nonstream_cpu_us_per_req'))} | read once at the first request, then incremental |")
    print(f"| 50 KB request body (median of rounds) | {fmt(med('body50k', 'nonstream_rps'))} | "
          f"{fmt(med('body50k', 'nonstream_cpu_us_per_req'))} | floor with the same body: "
          f"{fmt(med('floor50k', 'nonstream_cpu_us_per_req'))} µs |")
    if openai:
        print(f"| /anthropic (same process, for the ratio) | {openai['anthropic']['rps']} | "
              f"{openai['anthropic']['cpu_us_per_req']} | |")
        print(f"| /openai/v1/chat/completions | {openai['openai']['rps']} | "
              f"{openai['openai']['cpu_us_per_req']} | translation both ways |")
    print(f"| {args.k2000} concurrent slow streams | — | — | completed {fmt(k.get('k_streams_completed'))}, "
          f"lateness p99 {fmt(k.get('k_event_lateness_p99_ms'))} ms, RSS peak {fmt(k.get('k_rss_peak_mb'))} MB |")
    print()
    print(PROFILE)


if __name__ == "__main__":
    main()
