"""``python cli.py backup`` and ``restore``: one archive of the config and the usage data.

A backup is taken while the gateway runs. Usage day files and ``owners.jsonl`` are append-only
and every append is one ``write`` of whole lines under an exclusive ``flock``: each file is read
under a shared lock, so it is copied between two appends, never through one, and up to its last
whole line. Logs, the spool and the spend reservations (transient, in the private directory)
are left out. The archive (``tar.gz``, mode 0600: it holds the upstream keys) carries a
``manifest.json`` with each member's sha256; ``restore`` checks every member against it, refuses
paths outside ``config/`` and ``data/``, and writes only into empty directories.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import tarfile
import time
from pathlib import Path, PurePosixPath

import click

from ..config.items import PRICING_FILE, SERVER_FILE, TENANTS_FILE, UPSTREAMS_FILE
from ..core.version import VERSION
from .common import Paths, fail

MANIFEST = "manifest.json"
CONFIG_FILES = (SERVER_FILE, UPSTREAMS_FILE, TENANTS_FILE, PRICING_FILE)


def _whole_lines(path: Path) -> bytes:
    """The file up to its last whole line, read under a shared lock (between two appends)."""
    with open(path, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        try:
            data = f.read()
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return data[:data.rfind(b"\n") + 1]


def _members(paths: Paths) -> list[tuple[str, bytes]]:
    """``(archive name, content)`` of everything a backup holds."""
    out = [(f"config/{name}", (paths.config_dir / name).read_bytes())
           for name in CONFIG_FILES if (paths.config_dir / name).is_file()]
    usage = paths.data_dir / "usage"
    if usage.is_dir():
        for path in sorted(usage.rglob("*.json")):
            out.append((f"data/{path.relative_to(paths.data_dir).as_posix()}", _whole_lines(path)))
    owners = paths.data_dir / "owners.jsonl"
    if owners.is_file():
        out.append(("data/owners.jsonl", _whole_lines(owners)))
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
    tar.addfile(info, io.BytesIO(data))


@click.command()
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="The archive to write (default: ccgate-backup-<UTC time>.tar.gz here).")
@click.pass_obj
def backup(paths: Paths, out: str | None) -> None:
    """Write one archive of the config and the usage data (safe while the gateway runs)."""
    if not (paths.config_dir / SERVER_FILE).is_file():
        fail([f"{paths.config_dir}: no config here (--config-dir, or CCGATE_CONFIG_DIR)"])
    try:
        storage = json.loads((paths.config_dir / SERVER_FILE).read_text()).get(
            "storage", {}).get("type", "file")
    except (ValueError, AttributeError):
        storage = "file"
    members = _members(paths)
    manifest = {"ccgate": VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "storage": storage,
                "files": {name: hashlib.sha256(data).hexdigest() for name, data in members}}
    target = Path(out or time.strftime("ccgate-backup-%Y%m%dT%H%M%SZ.tar.gz", time.gmtime()))
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
        for name, data in members:
            _add(tar, name, data)
    records = sum(data.count(b"\n") for name, data in members if name.startswith("data/usage/"))
    click.echo(f"wrote {target}: {len(members)} files, {records} usage records (mode 0600: it "
               f"holds the upstream keys; keep it private)")
    if storage == "redis":
        click.echo("usage and owners live in Redis with storage.type \"redis\": the archive has "
                   "the config only. Back Redis up with its own persistence (copy the AOF or "
                   "an RDB after BGSAVE), or keep 'python cli.py usage export' output.")


def _safe(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return (name == MANIFEST or len(parts) > 1 and parts[0] in ("config", "data")
            and ".." not in parts and not name.startswith("/"))


@click.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def restore(paths: Paths, archive: str) -> None:
    """Check an archive and restore it into an empty config and data directory."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as e:
        fail([f"{archive}: not a CCGate backup ({e})"])
    try:
        manifest = json.loads(members.pop(MANIFEST))
        expected = manifest["files"]
    except (KeyError, ValueError, TypeError):
        fail([f"{archive}: no valid {MANIFEST}: not a CCGate backup"])
    problems = [f"{name}: not allowed in a backup" for name in members if not _safe(name)]
    problems += [f"{name}: missing" for name in expected if name not in members]
    problems += [f"{name}: damaged (checksum differs)" for name, data in members.items()
                 if expected.get(name) != hashlib.sha256(data).hexdigest()]
    for directory in (paths.config_dir, paths.data_dir):
        if directory.exists() and any(directory.iterdir()):
            problems.append(f"{directory}: not empty; restore into empty directories (move "
                            f"the current ones aside first)")
    if problems:
        fail(problems + [f"nothing restored from {archive}"])
    for name, data in members.items():
        top, rest = name.split("/", 1)
        target = (paths.config_dir if top == "config" else paths.data_dir) / rest
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    click.echo(f"restored {len(members)} files from a backup of {manifest.get('created')} "
               f"(CCGate {manifest.get('ccgate')}) into {paths.config_dir} and {paths.data_dir}; "
               f"start the gateway on them")
