"""A content-addressed cache on the local disk.

Entries are keyed by the sha256 of everything that determines them (prompt, model,
parameters, seed, input bytes), so a key never needs invalidating. Every write goes to a
temporary file in the same folder and is renamed into place: a reader sees a whole entry or
none, even if the writer is killed half-way.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def content_key(*parts: Any) -> str:
    """A stable sha256 over JSON-serialisable parts (bytes are hashed first)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, bytes | bytearray):
            encoded = b"bytes:" + hashlib.sha256(part).hexdigest().encode()
        else:
            encoded = json.dumps(part, sort_keys=True, default=str, ensure_ascii=False).encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


@contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it into place on success."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    os.close(handle)
    temp_path = Path(temporary)
    try:
        yield temp_path
        temp_path.replace(destination)
    finally:
        temp_path.unlink(missing_ok=True)


def write_bytes_atomic(destination: Path, data: bytes) -> None:
    with atomic_path(destination) as temporary:
        temporary.write_bytes(data)


def write_text_atomic(destination: Path, text: str) -> None:
    write_bytes_atomic(destination, text.encode("utf-8"))


class ContentCache:
    """Files and JSON documents under `root/<namespace>/<key[:2]>/<key>/`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry_dir(self, namespace: str, key: str) -> Path:
        return self.root / namespace / key[:2] / key

    def get_file(self, namespace: str, key: str, name: str) -> Path | None:
        path = self.entry_dir(namespace, key) / name
        return path if path.is_file() else None

    def put_file(self, namespace: str, key: str, name: str, data: bytes) -> Path:
        path = self.entry_dir(namespace, key) / name
        write_bytes_atomic(path, data)
        return path

    @contextmanager
    def lock(self, namespace: str, key: str) -> Iterator[None]:
        """Hold an exclusive lock on one entry, across threads and processes on this host."""
        folder = self.entry_dir(namespace, key)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def get_json(self, namespace: str, key: str) -> dict[str, Any] | None:
        path = self.get_file(namespace, key, "entry.json")
        if path is None:
            return None
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def put_json(self, namespace: str, key: str, document: dict[str, Any]) -> Path:
        text = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1)
        return self.put_file(namespace, key, "entry.json", text.encode("utf-8"))
