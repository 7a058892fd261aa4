"""Usage: token extraction, pricing, the stores (file or Redis), limits and the meter."""
from __future__ import annotations

from pathlib import Path

from ..config.settings import StorageConfig
from .spool import FallbackSpool


def open_store(storage: StorageConfig, data_dir: Path, *, spool: bool = True,
               private: Path | None = None, tenants: frozenset[str] | None = None):
    """The usage store ``storage`` names. ``spool=False`` (the CLI) raises on a failed write
    instead of spooling it; the gateway spools in ``private`` (``shared.private_dir``; None:
    in memory only), and replays only records of ``tenants``."""
    if storage.type == "redis":
        from .store_redis import RedisStore
        return RedisStore(storage.url, storage.prefix, private, tenants)
    from .store_file import FileStore
    return FileStore(data_dir, spool=FallbackSpool(private, tenants) if spool else None)
