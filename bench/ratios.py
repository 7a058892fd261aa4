"""Same-round ratios of two targets measured by the shared harness:
``python bench/ratios.py OUT REF TARGET`` (directories OUT/r<N>-REF and OUT/r<N>-TARGET)."""
import json
import statistics
import sys
from pathlib import Path


def metrics(path: Path) -> dict:
    return {m["metric"]: m["value"]
            for m in map(json.loads, (path / "metrics.jsonl").read_text().splitlines())}


def main() -> None:
    out, ref, target = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    rounds = sorted({p.name.split("-")[0] for p in out.iterdir() if p.name.startswith("r")})
    print(f"| metric | {ref} | {target} | ratio (median of rounds) |\n|---|---|---|---|")
    for name in ("nonstream_rps", "nonstream_cpu_us_per_req", "stream_rps",
                 "stream_cpu_us_per_req"):
        a = [metrics(out / f"{r}-{ref}")[name] for r in rounds]
        b = [metrics(out / f"{r}-{target}")[name] for r in rounds]
        ratio = statistics.median(y / x for x, y in zip(a, b))
        print(f"| {name} | {statistics.median(a):.0f} | {statistics.median(b):.0f} | "
              f"{ratio:.2f}x |")


if __name__ == "__main__":
    main()
