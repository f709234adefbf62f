"""Keeping the local cache in bounds: its entries, least recently used first, removed down to a
size cap or an age, never one that a running render may still read.

An entry is one file of the assembly store (a segment, a chunk of narration, a still), one
folder of staging or of a mirrored S3 source, and, only when asked, one entry of what was paid
for or read (images, clips, transcripts, languages, approvals). Its last use is the newest
modification time of its files: every hit touches the file it found (`touch`), so a run's last
use is recorded when it happens, whatever the file system does with access times.

A render holds the cache while it runs (`holding`): a small file under `.holds/` naming its
process and when it began. Entries used since the oldest live hold began are kept, so nothing
a running render found can disappear before it is joined. The shared S3 store of a fleet is
never pruned here: it is shared, and its own lifecycle rules belong to the bucket.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from clients.lease import process_running
from domain.layout import (
    ASSEMBLY,
    CACHE_HOLDS,
    GENERATED_NAMESPACES,
    REBUILDABLE_NAMESPACES,
)

GIGABYTE = 1024**3


@dataclass(frozen=True)
class CacheEntry:
    namespace: str
    path: Path
    size: int
    last_used: float

    @property
    def rebuildable(self) -> bool:
        return self.namespace in REBUILDABLE_NAMESPACES


@dataclass(frozen=True)
class PruneReport:
    removed: int
    freed_bytes: int
    kept: int
    kept_bytes: int
    held: int
    """Entries kept only because a running render may read them."""

    def summary(self) -> str:
        return (
            f"removed {self.removed} entries ({self.freed_bytes / GIGABYTE:.2f} GB); "
            f"kept {self.kept} ({self.kept_bytes / GIGABYTE:.2f} GB)"
            + (f", {self.held} held by a running render" if self.held else "")
        )


def touch(path: Path) -> None:
    """Record a use of a cache file (its modification time is its last use)."""
    with suppress(OSError):
        os.utime(path)


def _entry(namespace: str, path: Path) -> CacheEntry | None:
    """An entry's size and last use: the newest time among its files and its folder."""
    try:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        stats = [file.stat() for file in files]
        used = max([path.stat().st_mtime, *(s.st_mtime for s in stats)])
    except OSError:
        return None
    return CacheEntry(namespace, path, sum(s.st_size for s in stats), used)


def _listing(folder: Path) -> list[Path]:
    """What `folder` holds now; nothing when it went meanwhile (another run's work folder)."""
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _stored_files(root: Path) -> Iterator[Path]:
    """The assembly store's files, not those of a work folder or file being written beside
    them (their names start with a dot), nor any that go while they are listed."""
    for folder, subfolders, files in os.walk(root):  # what goes meanwhile is skipped
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        yield from (Path(folder) / name for name in files if not name.startswith("."))


def _entry_paths(cache_dir: Path, namespace: str) -> Iterator[Path]:
    root = cache_dir / namespace
    if not root.is_dir() or root.is_symlink():
        return
    if namespace == ASSEMBLY:
        yield from _stored_files(root)
    elif namespace in REBUILDABLE_NAMESPACES:
        yield from (p for p in _listing(root) if p.is_dir())
    else:  # <namespace>/<key[:2]>/<key>/
        yield from (p for shard in _listing(root) if shard.is_dir() for p in _listing(shard))


def cache_entries(cache_dir: Path, include_generated: bool = False) -> list[CacheEntry]:
    """Every prunable entry of the local cache, least recently used first."""
    namespaces = REBUILDABLE_NAMESPACES + (GENERATED_NAMESPACES if include_generated else ())
    entries = [
        entry
        for namespace in namespaces
        for path in _entry_paths(cache_dir, namespace)
        if (entry := _entry(namespace, path)) is not None
    ]
    return sorted(entries, key=lambda entry: entry.last_used)


@contextmanager
def holding(cache_dir: Path) -> Iterator[None]:
    """Hold the cache while a render runs: nothing it uses from now on is pruned."""
    folder = cache_dir / CACHE_HOLDS
    folder.mkdir(parents=True, exist_ok=True)
    hold = folder / f"{uuid.uuid4().hex}.json"
    body = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    hold.write_text(json.dumps(body), encoding="utf-8")
    try:
        yield
    finally:
        hold.unlink(missing_ok=True)


def held_since(cache_dir: Path) -> float | None:
    """When the oldest render still holding the cache began (stale holds are removed)."""
    oldest = None
    for hold in (cache_dir / CACHE_HOLDS).glob("*.json"):
        try:
            body = json.loads(hold.read_text(encoding="utf-8"))
            started, pid, host = float(body["started"]), int(body["pid"]), str(body["host"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host == socket.gethostname() and not process_running(pid):
            hold.unlink(missing_ok=True)
            continue
        oldest = started if oldest is None else min(oldest, started)
    return oldest


def _remove(entry: CacheEntry) -> bool:
    try:
        if entry.path.is_dir():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def prune(
    cache_dir: Path,
    max_bytes: int | None = None,
    keep_days: float | None = None,
    include_generated: bool = False,
    entries: list[CacheEntry] | None = None,
) -> PruneReport:
    """Remove entries unused for `keep_days`, then the least recently used until the cache
    is at most `max_bytes`; entries a running render may read are kept. `entries`: the
    cache's entries when the caller has just listed them (least recently used first)."""
    if entries is None:
        entries = cache_entries(cache_dir, include_generated)
    total = sum(entry.size for entry in entries)
    since = held_since(cache_dir)
    too_old = time.time() - keep_days * 86_400 if keep_days is not None else None
    removed = freed = held = 0
    for entry in entries:
        expired = too_old is not None and entry.last_used < too_old
        if not expired and (max_bytes is None or total - freed <= max_bytes):
            break
        if since is not None and entry.last_used >= since:
            held += 1
            continue
        if _remove(entry):
            removed, freed = removed + 1, freed + entry.size
    return PruneReport(
        removed=removed,
        freed_bytes=freed,
        kept=len(entries) - removed,
        kept_bytes=total - freed,
        held=held,
    )
