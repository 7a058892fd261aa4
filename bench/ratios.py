"""Same-round ratios of two targets measured by the shared harness:
``python bench/ratios.py OUT REF TARGET`` (directories OUT/r<N>-REF and OUT/r<N>-TARGET)."""
import json
import statistics
import sys
from pathlib import Path

METRICS = ("nonstream_rps", "nonstream_cpu_us_per_req", "stream_rps", "stream_cpu_us_per_req")


def metrics(path: Path) -> dict:
    return {m["metric"]: m["value"]
            for m in map(json.loads, (path / "metrics.jsonl").read_text().splitlines())}


def compare(out: Path, ref: str, target: str) -> dict[str, tuple[float, float, float]]:
    """Per metric: (median of REF, median of TARGET, median of the same-round ratios)."""
    rounds = sorted({p.name.split("-")[0] for p in out.iterdir()
                     if p.name.startswith("r") and p.name.endswith(f"-{target}")})
    found = {}
    for name in METRICS:
        a = [metrics(out / f"{r}-{ref}")[name] for r in rounds]
        b = [metrics(out / f"{r}-{target}")[name] for r in rounds]
        found[name] = (statistics.median(a), statistics.median(b),
                       statistics.median(y / x for x, y in zip(a, b)))
    return found


def table(out: Path, ref: str, target: str) -> str:
    lines = [f"| metric | {ref} | {target} | ratio (median of rounds) |", "|---|---|---|---|"]
    for name, (a, b, ratio) in compare(out, ref, target).items():
        lines.append(f"| {name} | {a:.0f} | {b:.0f} | {ratio:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
