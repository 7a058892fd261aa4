"""Turn one bench/run.sh session into bench/RESULTS.md (Markdown on stdout)."""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path

PROFILE = """\
### Where the CPU went, and what was done (issue 19)
`py-spy record` on the gateway under the non-streaming load showed, besides the stack's own
work (Flask dispatch, `HTTPAdapter.send`, urllib3/http.client parsing, gevent's server):
- the access log built a `LogRecord` per request and pushed it through filters (one imported
  Flask per record), a formatter and a `QueueHandler.prepare` copy on the request's path: access
  lines now go onto the writer thread's queue as their fields, and the thread makes the JSON;
- every request spawned two greenlets (the client watch and the upstream sender, both from the
  hang-up work of issue 21): the watch is now a libev read watcher that costs nothing until the
  client's socket turns readable, and it interrupts the upstream call in the request's own
  greenlet the way `gevent.Timeout` does, so no greenlet is spawned per request;
- metering: `dataclasses.asdict` deep-copied every usage record (now a plain field loop),
  Prometheus `labels()` validated and locked on each of ~6 calls (children are now cached), and
  the usage file's last byte was read back before every append (skipped when this process wrote
  the file's end itself);
- the per-request scan of all header values for control characters is skipped when the strict
  request-head parser of `ccgate/server.py` has already refused them;
- start-up objects are frozen (`gc.freeze()`), so full collections with many streams open do not
  walk them (a 400 ms pause was measured in the test harness with 500 streams open).
"""


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
            for name in ("direct", "floor", "ccgate", "floor50k", "body50k")}

    def med(name, metric):
        return median([m.get(metric) for m in runs[name]])

    def ratio(metric, name="ccgate", ref="floor"):
        """Median of the same-round ratios: the machine's speed drifts between rounds."""
        pairs = [(a.get(metric), b.get(metric)) for a, b in zip(runs[name], runs[ref])]
        return median([a / b for a, b in pairs if a and b])

    k = metrics(out / "k2000" / "metrics.jsonl")
    flat, empty = metrics(out / "flat" / "metrics.jsonl"), metrics(out / "empty" / "metrics.jsonl")
    openai = json.loads((out / "openai.json").read_text()) if (out / "openai.json").exists() else {}
    added_p50 = median([(c.get("single_p50_ms") or 0) - (f.get("single_p50_ms") or 0)
                        for c, f in zip(runs["ccgate"], runs["floor"])])
    flat_ratio = (flat.get("nonstream_cpu_us_per_req") or 0) / empty["nonstream_cpu_us_per_req"] \
        if empty.get("nonstream_cpu_us_per_req") else None

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
         f"{fmt(flat.get('nonstream_cpu_us_per_req'))} vs {fmt(empty.get('nonstream_cpu_us_per_req'))} µs",
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
    print("\nFor scale, the Node CCGate on the same harness (another run, the issue's figures): "
          "4,560 µs per request, 247 req/s, 4.09 ms single-connection p50.\n")
    print("## Harness summary (medians, ratios to `floor` in the same round)\n")
    print((out / "summary.md").read_text() if (out / "summary.md").exists() else "(missing)")
    print("\n## Extra runs\n")
    print("| run | non-stream req/s | CPU µs/req | notes |\n|---|---|---|---|")
    print(f"| empty usage file | {fmt(empty.get('nonstream_rps'))} | {fmt(empty.get('nonstream_cpu_us_per_req'))} | |")
    print(f"| 200,000 records already today | {fmt(flat.get('nonstream_rps'))} | "
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
