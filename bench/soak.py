"""A mixed soak with faults: nothing lost, nothing counted twice, nothing leaking.

Drives both APIs, streaming and not, from three tenants, against a gateway process
(``python app.py``) in front of two fault-injecting mock upstreams and one that refuses
connections. Faults: 529 with ``retry-after``, stalls past the upstream timeout, streams cut
mid-way, clients hanging up mid-stream. In the middle: a hot reload, a ``kill -9`` and restart,
and with ``--redis`` a Redis restart. Afterwards it checks that every request a client saw
complete has exactly one usage record, that no record is duplicated, that ``/usage`` equals the
records, that descriptors and greenlets are back to their level after warm-up, and that RSS is
flat. Exit status 1 when a check fails.

    python bench/soak.py --minutes 10 [--redis] [--clients 16] [--record]

``--record`` appends the result to bench/RESULTS.md. CI runs a short form
(``tests/e2e/test_soak.py``).
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import date, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.servers import free_port, wait_up  # noqa: E402
from tests.helpers import upstream_entry, write_config  # noqa: E402
from tests.mock_upstream import MockResponse, MockUpstream, error_body, message, message_events  # noqa: E402

KEYS = {"mum": "sk-ccg-soak-mum-00000000000", "dad": "sk-ccg-soak-dad-00000000000",
        "kid": "sk-ccg-soak-kid-00000000000"}
ADMIN = ("boss", "soak-admin-password-1")
MODEL = "claude-sonnet-4-20250514"


def faulty(mock: MockUpstream):
    """529s, stalls past the upstream timeout and cut streams, among normal answers."""
    events = message_events(message(MODEL, [{"type": "text", "text": "soak " * 20}]))

    def cut_stream():
        yield b"".join(events[:3])
        raise ConnectionResetError("cut")

    def handler(req):
        roll, streaming = random.random(), bool((req.json or {}).get("stream"))
        if roll < 0.06:
            return MockResponse(529, headers=[("content-type", "application/json"),
                                              ("retry-after", "1")],
                                body=error_body("overloaded_error", "busy"))
        if roll < 0.09:
            return MockResponse(delay_s=2.5, body=b"{}")  # past the 1.5 s timeout
        if roll < 0.13 and streaming:
            return MockResponse(headers=[("content-type", "text/event-stream")], body=cut_stream())
        return mock.stream(events, delay_s=0.01) if streaming else mock.default(req)
    return handler


class Gateway:
    """``python app.py`` in a child process, which the soak may kill and start again."""

    def __init__(self, config: Path, data: Path):
        self.config, self.data, self.port = config, data, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--config-dir", str(self.config),
             "--data-dir", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(self.url + "/health", timeout=30)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def runtime(self) -> dict:
        return requests.get(self.url + "/admin/api/runtime", auth=ADMIN, timeout=30).json()


class Redis:
    """A private redis-server that keeps everything it acknowledged (appendfsync always)."""

    def __init__(self, work: Path):
        self.work, self.port = work, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.work), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        gevent.sleep(0.5)

    def restart(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.start()


def one_request(gw: Gateway, seen: list) -> None:
    """A random request as an app would send it; what the client saw goes into ``seen``."""
    tenant = random.choice(list(KEYS))
    api, stream = random.choice(["anthropic", "openai"]), random.random() < 0.6
    hang_up = stream and random.random() < 0.05
    if api == "anthropic":
        url, body = gw.url + "/anthropic/v1/messages", {
            "model": MODEL, "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}
        end = b"message_stop"
    else:
        url, body = gw.url + "/openai/v1/chat/completions", {
            "model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        end = b"[DONE]"
    try:
        r = requests.post(url, json=body, headers={"x-api-key": KEYS[tenant]}, stream=True,
                          timeout=20)
        data = b""
        for chunk in r.iter_content(None):
            data += chunk
            if hang_up:
                break
        r.close()
        whole = r.status_code == 200 and not hang_up and (end in data if stream else
                                                          b'"usage"' in data)
        seen.append((r.headers.get("x-request-id"), tenant, whole))
    except requests.RequestException:
        seen.append((None, tenant, False))  # the gateway was killed under it


def client(gw: Gateway, deadline: float, seen: list) -> None:
    while time.monotonic() < deadline:
        one_request(gw, seen)


def records(config: Path, data: Path) -> list[dict]:
    day = date.today()
    out = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--config-dir", str(config),
                          "--data-dir", str(data), "usage", "export", "--from",
                          (day - timedelta(days=1)).isoformat(), "--to",
                          (day + timedelta(days=1)).isoformat()],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def check(gw: Gateway, config: Path, data: Path, seen: list, base: dict, end: dict,
          rss: list) -> dict:
    found = records(config, data)
    by_id: dict[str, int] = {}
    for r in found:
        by_id[r["requestId"]] = by_id.get(r["requestId"], 0) + 1
    whole = [rid for rid, _, ok in seen if ok]
    missing = [rid for rid in whole if by_id.get(rid, 0) == 0]
    twice = [rid for rid, n in by_id.items() if n > 1]
    usage_off = []
    for tenant, key in KEYS.items():
        mine = [r for r in found if r["tenantId"] == tenant]
        today = requests.get(gw.url + "/usage", headers={"x-api-key": key}, timeout=10).json()
        today_recs = [r for r in mine if r["timestamp"][:10] == today["date"]] if \
            today["timezone"] == "UTC" else mine
        cost = sum(r.get("totalCost", 0) for r in today_recs)
        if today["today"]["requests"] != len(today_recs) or \
                abs(today["today"]["costUSD"] - cost) > 1e-5:
            usage_off.append((tenant, today["today"]["requests"], len(today_recs)))
    warm_rss = rss[len(rss) // 3:] or rss
    return {
        "requests": len(seen), "complete": len(whole), "records": len(found),
        "missing": len(missing), "duplicated": len(twice), "usageMismatch": usage_off,
        "openFiles": (base["openFiles"], end["openFiles"]),
        "greenlets": (base["greenlets"], end["greenlets"]),
        "rssMB": (min(warm_rss), max(warm_rss)),
        "ok": not missing and not twice and not usage_off
        and end["openFiles"] <= base["openFiles"] + 5 and end["greenlets"] <= base["greenlets"] + 10
        and max(warm_rss) <= min(warm_rss) * 1.25 + 5,
    }


def soak(minutes: float, clients: int, use_redis: bool, work: Path) -> dict:
    mocks = [MockUpstream(n).start() for n in ("mirror-a", "mirror-b")]
    for m in mocks:
        m.handler = faulty(m)
    storage = {}
    redis = None
    if use_redis:
        redis = Redis(work)
        redis.start()
        storage = {"storage": {"type": "redis", "url": redis.url, "prefix": "soak:"}}
    upstreams = [upstream_entry(m, timeout=1500) for m in mocks] + [
        {"id": "refusing", "url": f"http://127.0.0.1:{free_port()}", "key": "sk-x-0000000000"}]
    config = write_config(work / "config", upstreams, tenants=[
        {"id": t, "key": k, "limits": {"daily": {"maxUSD": 1000}}} for t, k in KEYS.items()],
        server={"admin": {"enabled": True, "username": ADMIN[0], "password": ADMIN[1]},
                "openai": {"enabled": True}, "logging": {"level": "warning"}, **storage},
        load_balancer={"unhealthyThreshold": 2})
    gw = Gateway(config, work / "data")
    gw.start()
    seen: list = []
    total = minutes * 60
    started = time.monotonic()
    workers = [gevent.spawn(client, gw, started + total, seen) for _ in range(clients)]
    at = lambda share: gevent.sleep(max(0.0, started + share * total - time.monotonic()))
    at(0.25)
    doc = json.loads((config / "upstreams.json").read_text())
    doc["upstreams"][0]["weight"] = 3  # a hot reload under load
    (config / "upstreams.json").write_text(json.dumps(doc))
    at(0.4)
    gw.kill9()
    gw.start()
    if redis is not None:
        at(0.5)
        redis.restart()
    at(0.6)
    base, rss = gw.runtime(), []
    while time.monotonic() < started + total:
        rss.append(gw.runtime()["rssMB"])
        gevent.sleep(max(1.0, total / 60))
    gevent.joinall(workers)
    gevent.sleep(3)  # in-flight requests end, records land
    result = check(gw, config, work / "data", seen, base, gw.runtime(), rss)
    gw.stop()
    for m in mocks:
        m.stop()
    if redis is not None:
        redis.proc.terminate()
    return result


def summary(r: dict, args) -> str:
    """One line of bench/RESULTS.md's soak table."""
    return (f"| {time.strftime('%Y-%m-%d %H:%M')} | {args.minutes:g} min, {args.clients} clients, "
            f"{'redis (restarted)' if args.redis else 'file'} | {r['requests']:,} "
            f"({r['complete']:,} complete) | {r['records']:,} | {r['missing']} / {r['duplicated']} | "
            f"{'yes' if not r['usageMismatch'] else r['usageMismatch']} | "
            f"{r['openFiles'][0]} → {r['openFiles'][1]} / {r['greenlets'][0]} → {r['greenlets'][1]} | "
            f"{r['rssMB'][0]}–{r['rssMB'][1]} MB | {'ok' if r['ok'] else 'FAILED'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--redis", action="store_true")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccgate-soak-"))
    try:
        result = soak(args.minutes, args.clients, args.redis, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    line = (f"soak {args.minutes:g} min, {args.clients} clients, store "
            f"{'redis' if args.redis else 'file'}: {json.dumps(result)}")
    print(line)
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(summary(result, args) + "\n")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
