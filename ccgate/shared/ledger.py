"""Spend reservations of running requests (see ``spend_rule``), kept where every process that
admits requests for the same data dir sees them.

``MemoryLedger`` serves one process. ``FileLedger`` serves every process sharing a private
directory (``python app.py --workers N``, ``gunicorn -w N`` on the file store): one small JSON
file per tenant, read and rewritten under ``flock``. With several workers it also keeps each
tenant's concurrency slots (leases of amount 0, ``slot:…``) and rpm window (entries that expire,
``rpm:…``), and the claims that keep one alert from going out once per worker. The recorded spend is read while the lock is held, and a request's
record is written before its lease is released (under the same lock), so each cost is counted
either in the spend or in the leases at every admission. A lease names its process (pid and
start time): the leases of a process that died are dropped by the next admission instead of
holding room for ever.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Callable

from .spend_rule import spend_refusal

log = logging.getLogger("ccgate.usage")
_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_PAD_MOST = 4096  # a rewrite shorter than the file pads with spaces up to this, then truncates
EXPIRING = -1  # the "pid" of an entry that outlives its process: [expiry, EXPIRING, ""]
CLAIMS = "claims!"  # the claims' file (a name no tenant id can have)
UNLIMITED = "unlimited"  # the slot of a tenant without a concurrency limit (nothing is kept)


class LedgerUnavailable(Exception):
    """Reservations cannot be kept: spend-limited requests must not be admitted."""


def admit_lease(leases: dict, lease: str, amount: float, room: float,
                entry: list) -> float | None:
    """Apply ``spend_rule`` to the running ``leases`` (``lease -> [amount, ...]``); add
    ``lease`` (as ``entry``) when admitted, else return what is held."""
    running = sum(held[0] for held in leases.values())
    refused = spend_refusal(running, 0.0, running > 0, amount, room)
    if refused is None:
        leases[lease] = entry
    return refused


class MemoryLedger:
    """Reservations of this process only (one process serves the data dir)."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, list]] = {}  # tenant -> lease -> [amount]
        self._serial = 0

    def reserve(self, tenant_id: str, amount: float, room: Callable[[], float],
                now: float) -> tuple[object, float | None]:
        self._serial += 1
        lease = str(self._serial)
        leases = self.leases.setdefault(tenant_id, {})
        refused = admit_lease(leases, lease, amount, room(), [amount])
        if not leases:
            del self.leases[tenant_id]
        return (None, refused) if refused is not None else (lease, None)

    def unreserve(self, tenant_id: str, lease: object, spent: float, now: float) -> None:
        leases = self.leases.get(tenant_id, {})
        leases.pop(lease, None)
        if not leases:
            self.leases.pop(tenant_id, None)

    def close(self) -> None:
        pass


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), None when it is gone; "" where
    /proc is not there (then the pid alone says it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    except (OSError, IndexError):
        return ""


class FileLedger:
    """Reservations shared by the processes whose ``directory`` is the same (private, 0700)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.me = [os.getpid(), _start_time(os.getpid())]
        self._serial = 0
        self._fds: dict[str, int] = {}  # tenant -> its open ledger file (opened once)

    def _fd(self, tenant_id: str) -> int:  # tenant_id: a tenant's, or CLAIMS
        if self.me[0] != os.getpid():
            # Forked (gunicorn --preload): a descriptor shared with the parent would share its
            # lock too, and the leases would name the parent. Start afresh.
            self.close()
            self.me = [os.getpid(), _start_time(os.getpid())]
        fd = self._fds.get(tenant_id)
        if fd is None:
            if not _SAFE.fullmatch(tenant_id) and tenant_id != CLAIMS:
                raise OSError(f"tenant id {tenant_id!r} cannot name a file")
            self.dir.mkdir(mode=0o700, exist_ok=True)
            fd = self._fds[tenant_id] = os.open(
                f"{self.dir}/{tenant_id}.json",
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        return fd

    def _update(self, tenant_id: str, change: Callable[[dict], object]) -> object:
        """``change(leases)`` on the tenant's leases under the file's lock, then saved."""
        try:
            fd = self._fd(tenant_id)
        except OSError as e:
            raise LedgerUnavailable(f"{self.dir}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 1 << 20, 0)
            leases = self._load(raw, tenant_id)
            result = change(leases)
            text = json.dumps(leases, separators=(",", ":")).encode()
            if len(text) < len(raw) <= _PAD_MOST:
                text += b" " * (len(raw) - len(text))  # JSON allows it; no truncate per call
            elif len(text) < len(raw):
                os.ftruncate(fd, len(text))
            if os.pwrite(fd, text, 0) != len(text):
                raise OSError("short write")
            return result
        except OSError as e:
            raise LedgerUnavailable(f"{self.dir}: {e.strerror or e}") from None
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _load(self, raw: bytes, tenant_id: str) -> dict:
        """The leases as stored; entries not shaped as this code writes them, or of processes
        that are gone, are dropped."""
        try:
            leases = json.loads(raw) if raw.strip() else {}
        except ValueError:
            leases = None
        if not isinstance(leases, dict):
            log.warning("%s/%s.json was damaged: its reservations are dropped", self.dir,
                        tenant_id)
            return {}
        alive: dict = {self.me[0]: self.me[1]}
        wall = time.time()
        for key, entry in list(leases.items()):
            try:
                amount, pid, start = entry
                float(amount)
                if pid == EXPIRING:
                    if amount <= wall:
                        raise ValueError("expired")
                    continue
                if pid not in alive:
                    alive[pid] = _start_time(pid)
                if alive[pid] is None or alive[pid] != start:
                    raise ValueError("its process is gone")
            except (TypeError, ValueError):
                del leases[key]
        return leases

    def reserve(self, tenant_id: str, amount: float, room: Callable[[], float],
                now: float) -> tuple[object, float | None]:
        """``room()`` (limit minus recorded spend) is read under the lock."""
        self._serial += 1
        lease = f"{self.me[0]}.{self._serial}"
        refused = self._update(tenant_id, lambda leases: admit_lease(
            leases, lease, amount, room(), [amount, *self.me]))
        return (None, refused) if refused is not None else (lease, None)

    def unreserve(self, tenant_id: str, lease: object, spent: float, now: float) -> None:
        try:
            self._update(tenant_id, lambda leases: leases.pop(lease, None))
        except LedgerUnavailable as e:
            # The lease stays until this process ends: fail closed meanwhile.
            log.error("a spend reservation could not be released (%s)", e)

    def _next(self, kind: str) -> str:
        self._serial += 1
        return f"{kind}:{self.me[0]}.{self._serial}"

    def acquire(self, tenant_id: str, limit: int, now: float) -> object | None:
        """A slot among ``limit`` in-flight requests of every worker, or None when all are
        taken (a dead worker's slots are dropped)."""
        if not limit:
            return UNLIMITED
        lease = self._next("slot")

        def take(leases: dict) -> str | None:
            if sum(1 for key in leases if key.startswith("slot:")) >= limit:
                return None
            leases[lease] = [0.0, *self.me]
            return lease
        return self._update(tenant_id, take)

    def release(self, tenant_id: str, slot: object) -> None:
        if slot != UNLIMITED:
            try:
                self._update(tenant_id, lambda leases: leases.pop(slot, None))
            except LedgerUnavailable as e:
                log.error("a concurrency slot could not be released (%s)", e)

    def rpm_admit(self, tenant_id: str, rpm: int, now: float) -> float | None:
        """Count one request in the 60 s window of every worker; seconds to wait when full."""
        entry = self._next("rpm")

        def count(leases: dict) -> float | None:
            ends = sorted(v[0] for k, v in leases.items() if k.startswith("rpm:"))
            if len(ends) >= rpm:
                return ends[0] - now
            leases[entry] = [now + 60, EXPIRING, ""]
            return None
        return self._update(tenant_id, count)

    def claim(self, key: str, ttl_s: float) -> bool:
        """True for the first claim of ``key`` within ``ttl_s`` by any worker."""
        def first(claims: dict) -> bool:
            if key in claims:
                return False
            claims[key] = [time.time() + ttl_s, EXPIRING, ""]
            return True
        return self._update(CLAIMS, first)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
