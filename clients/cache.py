"""A content-addressed cache on the local disk, optionally shared through an S3 prefix.

Entries are keyed by the sha256 of everything that determines them (prompt, model,
parameters, seed, input bytes), so a key never needs invalidating. Every write goes to a
temporary file in the same folder and is renamed into place: a reader sees a whole entry or
none, even if the writer is killed half-way.

With a shared store, every entry written is also uploaded (an S3 put is atomic too), a local
miss is looked up there, and an entry's lock is also a lease object there, so workers on
other machines wait for a result being paid for instead of paying for it again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clients.cache_pruning import touch
from clients.lease import LEASE_LIFETIME_S, Lease, SharedStore


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


def current_umask() -> int:
    """The process's umask, read without changing it (os.umask can only read by setting,
    which would briefly expose files other threads create)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it into place on success, with
    the permissions the umask gives a newly created file (mkstemp's are always 0600)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    os.close(handle)
    temp_path = Path(temporary)
    try:
        yield temp_path
        temp_path.chmod(0o666 & ~current_umask())
        temp_path.replace(destination)
    finally:
        temp_path.unlink(missing_ok=True)


def copy_atomic(source: Path, destination: Path) -> None:
    """`source` copied to `destination`, which never holds half of it."""
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)


def write_bytes_atomic(destination: Path, data: bytes) -> None:
    with atomic_path(destination) as temporary:
        temporary.write_bytes(data)


def write_text_atomic(destination: Path, text: str) -> None:
    write_bytes_atomic(destination, text.encode("utf-8"))


class ContentCache:
    """Files and JSON documents under `root/<namespace>/<key[:2]>/<key>/`, and under the same
    names in `shared` when there is one."""

    def __init__(
        self,
        root: Path,
        shared: SharedStore | None = None,
        lease_s: float = LEASE_LIFETIME_S,
        poll_s: float = 1.0,
    ) -> None:
        self.root = root
        self.shared = shared
        self.lease_s = lease_s
        self.poll_s = poll_s

    def entry_dir(self, namespace: str, key: str) -> Path:
        return self.root / namespace / key[:2] / key

    def _shared_name(self, namespace: str, key: str, name: str) -> str:
        return f"{namespace}/{key[:2]}/{key}/{name}"

    def get_file(self, namespace: str, key: str, name: str) -> Path | None:
        path = self.entry_dir(namespace, key) / name
        if path.is_file():
            touch(path)
            return path
        if self.shared is None or not name:
            return None
        data = self.shared.read_bytes(self._shared_name(namespace, key, name))
        if data is None:
            return None
        write_bytes_atomic(path, data)
        return path

    def ensure_local(self, path: Path) -> Path:
        """`path`, an entry file of this cache, on this machine: fetched from the shared store
        when another machine wrote it. Returned unchanged when it cannot be fetched."""
        if path.is_file() or self.shared is None:
            return path
        try:
            namespace, _, key, name = path.relative_to(self.root).parts
        except ValueError:
            return path
        return self.get_file(namespace, key, name) or path

    def put_file(self, namespace: str, key: str, name: str, data: bytes) -> Path:
        path = self.entry_dir(namespace, key) / name
        write_bytes_atomic(path, data)
        if self.shared is not None:
            self.shared.write_bytes(self._shared_name(namespace, key, name), data)
        return path

    @contextmanager
    def lock(self, namespace: str, key: str) -> Iterator[None]:
        """Hold an exclusive lock on one entry: across threads and processes on this host,
        and, with a shared store, across machines."""
        folder = self.entry_dir(namespace, key)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                if self.shared is None:
                    yield
                else:
                    with self._lease(self.shared, self._shared_name(namespace, key, ".lease")):
                        yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @contextmanager
    def _lease(self, shared: SharedStore, name: str) -> Iterator[None]:
        """A lease object in the shared store (clients/lease.py), waited for while another
        holder keeps it alive."""
        lease = Lease(shared, name, self.lease_s)
        while not lease.try_acquire():
            time.sleep(self.poll_s)
        with lease.held():
            yield

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
