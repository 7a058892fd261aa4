"""Usage: token extraction, pricing, the stores (file or Redis), limits and the meter."""
from __future__ import annotations

from pathlib import Path

from ..settings import StorageConfig
from .spool import default_spool_dir


def open_store(storage: StorageConfig, data_dir: Path, *, spool: bool = True):
    """The usage store ``storage`` names. ``spool=False`` (the CLI) raises on a failed write
    instead of spooling it; the Redis store always spools under ``<data_dir>/spool``."""
    if storage.type == "redis":
        from .store_redis import RedisStore
        return RedisStore(storage.url, storage.prefix, data_dir)
    from .store_file import FileStore
    return FileStore(data_dir, spool_dir=(storage.spool_dir or default_spool_dir(data_dir))
                     if spool else None)
