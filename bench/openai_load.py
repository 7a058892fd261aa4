"""The OpenAI surface's extra cost: CPU per request for the same upstream work through
/anthropic/v1/messages and /openai/v1/chat/completions, measured in one gateway process.

Run by bench/run.sh; prints one JSON object. CPU comes from /proc/<pid>/stat (user + system).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_up(url: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def wrk(script: Path, url: str, duration: int, env: dict) -> dict:
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{duration}s", "-s", str(script), url],
                         capture_output=True, text=True, env={**os.environ, **env}).stdout
    return json.loads(re.search(r"WRK_JSON (\{.*\})", out).group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--harness", required=True)
    args = ap.parse_args()
    harness = Path(args.harness)
    body = json.loads((harness / "request_body.json").read_text())
    text = " ".join(b["text"] for b in body["system"])
    chat = {"model": "gpt-4o", "max_tokens": body.get("max_tokens", 4096),
            "messages": [{"role": "system", "content": text}] + [
                {"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
                 else " ".join(p.get("text", "") for p in m["content"] if isinstance(p, dict))}
                for m in body["messages"]], "user": body.get("metadata", {}).get("user_id")}
    mock = subprocess.Popen(["node", str(harness / "upstream.js"), "--port", "18080", "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    gw = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--config-dir", f"{args.work}/config",
                           "--data-dir", f"{args.work}/data-openai"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        wait_up("http://127.0.0.1:18080/health")
        wait_up("http://127.0.0.1:13000/health")
        result = {}
        for name, script, url, env in (
                ("anthropic", harness / "post.lua", "http://127.0.0.1:13000/anthropic/v1/messages",
                 {"BENCH_KEY": args.key}),
                ("openai", ROOT / "bench" / "openai.lua", "http://127.0.0.1:13000/openai/v1/chat/completions",
                 {"BENCH_KEY": args.key, "BENCH_OPENAI_BODY": json.dumps(chat)})):
            wrk(script, url, 2, env)  # warm-up
            before = cpu_seconds(gw.pid)
            run = wrk(script, url, args.duration, env)
            used = cpu_seconds(gw.pid) - before
            result[name] = {"rps": round(run["requests"] / (run["duration_us"] / 1e6), 1),
                            "cpu_us_per_req": round(used / max(run["requests"], 1) * 1e6),
                            "non2xx": run.get("non2xx", run.get("err_status", 0))}
        result["openai_cpu_ratio"] = round(result["openai"]["cpu_us_per_req"]
                                           / result["anthropic"]["cpu_us_per_req"], 2)
        print(json.dumps(result))
    finally:
        gw.terminate()
        gw.wait(15)
        os.killpg(mock.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
