"""The Redis usage store, for several gateway instances that must act as one.

Per tenant and day: a list of records (the CCGate record format, one JSON string each), a set of
their request ids, and a hash of totals (also per model); per tenant and month, a hash of totals.
One Lua script appends a record and bumps every total atomically, and does nothing for a request
id it has seen: replaying a spool twice never bills twice.

When Redis cannot be reached, records go to a bounded local spool file and are replayed by a
background greenlet once it answers again; reads raise ``StoreUnavailable`` (callers fail open).
"""
from __future__ import annotations

import errno
import json
import logging
import os
from collections import deque
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, Iterable

import redis

from ..core.json_line import json_line
from ..core.periodic import Periodic
from ..shared.link import RedisLink
from ..shared.redis_scripts import APPEND
from .spool import MAX_PENDING, append_private, read_private, spooled_records
from .store import COUNTER_FIELDS, MONEY_FIELDS, Counters, DayTotals, StoreUnavailable, latest, minute_of

log = logging.getLogger("ccgate.usage")

SPOOL_MAX_BYTES = 256 * 1024 * 1024
REPLAY_INTERVAL_S = 2.0

def increments(record: dict) -> list[str]:
    """The APPEND script's last arguments for one record: its non-zero counter values as JSON
    (numbers as exact strings), its model, its upstream ("" for none) and the epoch minute of
    its spend ("" for none). The script adds each value in all, per model (``m|<model>|``) and
    per upstream (``u|<upstream>|``), and the spend per minute (``t|<minute>``)."""
    one = Counters()
    one.add_record(record)
    values = {f: repr(float(v)) for f in COUNTER_FIELDS for v in (getattr(one, f),) if v}
    model = record.get("model") if isinstance(record.get("model"), str) else "unknown"
    upstream = record.get("upstream") if isinstance(record.get("upstream"), str) else ""
    minute = minute_of(record)
    return [json_line(values).decode(), model, upstream, "" if minute is None else str(minute)]


def totals_from_hash(raw: dict) -> DayTotals:
    """A totals hash (``field``, ``m|<model>|<field>``, ``u|<upstream>|<field>`` keys) as
    DayTotals."""
    totals = DayTotals()
    for key, value in raw.items():
        key = key.decode() if isinstance(key, bytes) else key
        target: Counters = totals
        field = key
        if key.startswith("t|"):
            totals.minutes[int(key[2:])] = float(value)
            continue
        if key[:2] in ("m|", "u|") and key.count("|") >= 2:
            name, field = key[2:key.rindex("|")], key[key.rindex("|") + 1:]
            split = totals.by_model if key[0] == "m" else totals.by_upstream
            target = split.setdefault(name, Counters())
        if field in COUNTER_FIELDS:
            number = float(value)
            setattr(target, field, number if field in MONEY_FIELDS else int(number))
    return totals


class RedisStore:
    """Usage in Redis (``storage.type: "redis"``), same interface as the file store."""

    def __init__(self, link: RedisLink | str, prefix: str, spool_dir: Path | None,
                 tenants: frozenset[str] | None = None):
        self.link = RedisLink(link) if isinstance(link, str) else link
        self.redis = self.link.redis
        self.prefix = prefix
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None  # private, or none
        self.spool_path = (self.spool_dir / f"redis-usage-{os.getpid()}.jsonl"
                           if self.spool_dir is not None else None)
        self.known_tenants = tenants
        self._append = self.redis.register_script(APPEND)
        self.spool_error: str | None = None if self.spool_dir is not None else (
            "no private directory for the spool (error.log says why)")
        self._memory: deque[tuple[dict, date]] = deque()
        self._replayer = Periodic("usage spool replay", REPLAY_INTERVAL_S, self._replay_pending)

    # -- keys -------------------------------------------------------------------------------------
    def _day_key(self, tenant_id: str, day: date, kind: str) -> str:
        return f"{self.prefix}u:{tenant_id}:{day:%Y-%m-%d}:{kind}"

    def _month_key(self, tenant_id: str, day: date) -> str:
        return f"{self.prefix}u:{tenant_id}:{day:%Y-%m}:month"

    @property
    def healthy(self) -> bool:
        return self.link.healthy

    # -- writing ----------------------------------------------------------------------------------
    def _write(self, record: dict, day: date) -> None:
        tenant = record["tenantId"]
        rid = record.get("requestId") or os.urandom(8).hex()
        revision = record.get("provisional")
        args = [f"{rid}#p{revision}" if revision else rid, json_line(record), tenant, rid,
                "1" if revision else "0", *increments(record)]
        keys = [self._day_key(tenant, day, "ids"), self._day_key(tenant, day, "records"),
                self._day_key(tenant, day, "totals"), self._month_key(tenant, day),
                f"{self.prefix}tenants", self._day_key(tenant, day, "provisional"),
                self._day_key(tenant, day, "index")]
        self.link.call("a usage append", lambda: self._append(keys=keys, args=args))

    def append(self, record: dict, day: date) -> None:
        try:
            self._write(record, day)
        except redis.RedisError:
            self._spool(record, day)

    def _spool(self, record: dict, day: date) -> None:
        """Keep a record Redis did not take: in the spool file, else (disk trouble) in memory."""
        line = json.dumps({"day": day.isoformat(), "record": record}, ensure_ascii=False) + "\n"
        try:
            if self.spool_path is None:
                raise OSError(self.spool_error)
            size = self.spool_path.stat().st_size if self.spool_path.exists() else 0
            if size > SPOOL_MAX_BYTES:
                raise OSError(errno.EFBIG, f"spool over {SPOOL_MAX_BYTES} bytes")
            append_private(self.spool_path, line.encode())
            self.spool_error = None
        except OSError as e:
            if self.spool_dir is not None:
                self.spool_error = f"{self.spool_dir}: {e.strerror or e}"
            if len(self._memory) >= MAX_PENDING:
                log.error("usage record %s LOST: redis is down, the spool cannot be written (%s) "
                          "and memory is full", record.get("requestId"), self.spool_error)
                return
            self._memory.append((record, day))

    @property
    def recording_ok(self) -> bool:
        """False while records could be kept only in memory (refuse metered spend)."""
        return self.link.healthy or self.spool_error is None

    def problem(self) -> str | None:
        """What is wrong with shared state and usage recording, for /health."""
        if self.link.healthy and not self._memory:
            return None
        text = "redis unreachable: limits and balancing fail open, usage is spooled locally"
        if self._memory:
            text += f"; the spool cannot be written ({self.spool_error}): " \
                    f"{len(self._memory)} records kept in memory"
        return text

    def _replay_memory(self) -> int:
        done = 0
        while self._memory:
            record, day = self._memory[0]
            self._write(record, day)  # raises while redis is down: the rest stays
            self._memory.popleft()
            done += 1
        return done

    def replay(self) -> int:
        """Send spooled records (of any process) to Redis; the number replayed."""
        done = 0
        for path in sorted(self.spool_dir.glob("redis-usage-*.jsonl")):
            claimed = path.with_suffix(".replaying")
            try:
                os.rename(path, claimed)  # atomic: one process replays a given file
                data = read_private(claimed)
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("%s: not replayed (%s)", claimed, e.strerror or e)
                claimed.unlink(missing_ok=True)
                continue
            items = list(spooled_records(data, claimed, self.known_tenants))
            for i, (record, day) in enumerate(items):
                try:
                    self._write(record, day)
                except redis.RedisError:
                    rest = "".join(json.dumps({"day": d.isoformat(), "record": r},
                                              ensure_ascii=False) + "\n" for r, d in items[i:])
                    append_private(path, rest.encode())  # give the rest back
                    claimed.unlink()
                    raise
                done += 1
            claimed.unlink()
        return done

    def _replay_pending(self) -> None:
        if not self._memory and (self.spool_dir is None
                                 or not any(self.spool_dir.glob("redis-usage-*.jsonl"))):
            return
        try:
            count = self._replay_memory() + self.replay()
            if count:
                log.warning("replayed %d spooled usage records into redis", count)
        except redis.RedisError:
            pass  # still down: the link logged it

    def start(self) -> None:
        self._replayer.start()

    def warning(self) -> str | None:
        return self.link.persistence_warning()

    # -- reading ----------------------------------------------------------------------------------
    def _read(self, fn):
        try:
            return self.link.call("a usage read", fn)
        except redis.RedisError:
            raise StoreUnavailable("the usage store (redis) cannot be reached") from None

    def day_totals(self, tenant_id: str, day: date) -> DayTotals:
        return totals_from_hash(self._read(lambda: self.redis.hgetall(
            self._day_key(tenant_id, day, "totals"))))

    def month_cost(self, tenant_id: str, day: date) -> float:
        """Spend of ``day``'s month so far, from the month's running total."""
        raw = self._read(lambda: self.redis.hget(self._month_key(tenant_id, day), "costUSD"))
        return float(raw or 0)

    def range_totals(self, tenant_id: str, first: date, last: date) -> list[tuple[date, DayTotals]]:
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]

        def fetch():
            pipe = self.redis.pipeline(transaction=False)
            for d in days:
                pipe.hgetall(self._day_key(tenant_id, d, "totals"))
            return pipe.execute()

        return [(d, totals_from_hash(raw)) for d, raw in zip(days, self._read(fetch))]

    def recent(self, day: date, limit: int, tenant_id: str | None = None) -> list[dict]:
        tenants = [tenant_id] if tenant_id else list(self.tenants())

        def fetch():
            pipe = self.redis.pipeline(transaction=False)
            for t in tenants:
                pipe.lrange(self._day_key(t, day, "records"), -limit, -1)
            return pipe.execute()

        records = [r for rows in self._read(fetch) for r in latest([json.loads(raw) for raw in rows])]
        records.sort(key=lambda r: str(r.get("timestamp", "")), reverse=True)
        return records[:limit]

    def find(self, request_id: str, tenant_id: str, day: date, since: float | None,
             pause: Callable[[], None]) -> dict | None:
        """The latest record of ``request_id`` in one tenant's day, by the day's index (two
        commands, whatever the day's size; records written before the index are not found)."""
        def run():
            at = self.redis.hget(self._day_key(tenant_id, day, "index"), request_id)
            return None if at is None else self.redis.lindex(
                self._day_key(tenant_id, day, "records"), int(at))
        raw = self._read(run)
        return json.loads(raw) if raw is not None else None

    def records(self, tenant_id: str, day: date) -> list[dict]:
        """Every record of one tenant's day (export)."""
        return latest([json.loads(raw) for raw in self._read(
            lambda: self.redis.lrange(self._day_key(tenant_id, day, "records"), 0, -1))])

    def tenants(self) -> Iterable[str]:
        return sorted(t.decode() for t in self._read(lambda: self.redis.smembers(f"{self.prefix}tenants")))

    def close(self) -> None:
        self._replayer.stop()
        self.link.close()
