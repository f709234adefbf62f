"""This machine's copies of stored files: the files of a local folder, the ETag S3 would give
one, and a local folder kept equal to a set of stored objects."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from clients.cache import write_bytes_atomic
from clients.storage import MULTIPART_CHUNK, MULTIPART_THRESHOLD, Storage, StoredObject, safe_name


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under `root`, hidden work files excluded."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(
            part.startswith(".") for part in path.relative_to(root).parts
        ):
            yield path


def local_etag(path: Path) -> str:
    """The ETag S3 gives `path` once `S3Storage.upload` has put it: the MD5 of its bytes, or
    for a multipart upload the MD5 of its parts' MD5s and the number of parts."""
    whole = hashlib.md5(usedforsecurity=False)
    parts = []
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MULTIPART_CHUNK), b""):
            whole.update(block)
            parts.append(hashlib.md5(block, usedforsecurity=False).digest())
    if path.stat().st_size < MULTIPART_THRESHOLD:
        return whole.hexdigest()
    return f"{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"


def mirror(storage: Storage, names: list[StoredObject], folder: Path) -> None:
    """Make `folder` hold exactly `names` from `storage`, downloading only what changed."""
    folder.mkdir(parents=True, exist_ok=True)
    stamps = folder / ".etags.json"
    try:
        known: dict[str, str] = json.loads(stamps.read_text()) if stamps.is_file() else {}
    except ValueError:
        known = {}
    wanted = {item.name for item in names}
    for existing in folder.iterdir():
        if existing.is_file() and not existing.name.startswith(".") and existing.name not in wanted:
            existing.unlink()
    current = {}
    for item in names:
        local = folder / safe_name(item.name)
        if not (local.is_file() and known.get(item.name) == item.etag):
            storage.download(item.name, local)
        current[item.name] = item.etag
    write_bytes_atomic(stamps, json.dumps(current, ensure_ascii=False).encode())
