"""Leases in a shared store (a local folder or an S3 prefix, clients/storage.py).

A lease is an object created only if absent. Its holder renews it every quarter of its
lifetime while it works and deletes it when done, however the work ends; a holder that died
(killed, crashed, its machine gone) stops renewing it, and once it has expired anyone may take
it over. So a dead holder blocks the others for one lifetime at most, and not at all on its
own machine, where a holder that no longer runs is seen at once. The content cache leases an
entry being paid for; the watcher leases each render it claims; every run leases its target.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from domain.errors import StoryboardError
from domain.layout import CLAIMS_FOLDER

LEASE_LIFETIME_S = 120.0


class SharedStore(Protocol):
    """The part of a storage location (clients/storage.py) leases and a shared cache need."""

    def read_bytes(self, name: str) -> bytes | None: ...

    def write_bytes(self, name: str, data: bytes) -> None: ...

    def put_if_absent(self, name: str, data: bytes) -> bool: ...

    def delete(self, name: str) -> None: ...


def lease_body(owner: str, renewed_at: float, lifetime_s: float) -> bytes:
    """The lease object: who holds it, its last heartbeat and when it expires without one."""
    return json.dumps(
        {"owner": owner, "renewed_at": renewed_at, "expires": renewed_at + lifetime_s}
    ).encode()


def holder_gone(owner: str) -> bool:
    """Whether `owner` was a process on this machine that no longer runs (killed outright):
    its lease need not be waited out. A holder elsewhere is judged by its heartbeat alone."""
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    return host == socket.gethostname() and pid.isdigit() and not process_running(int(pid))


def process_running(pid: int) -> bool:
    """Whether a process `pid` runs on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it runs, as another user
    return True


class Lease:
    """One named lease in `store`, held by this process under a unique owner id."""

    def __init__(
        self,
        store: SharedStore,
        name: str,
        lifetime_s: float = LEASE_LIFETIME_S,
        label: str = "",
    ):
        """`label` says who holds it, for the one who finds it taken (a flow run's name)."""
        self.store = store
        self.name = name
        self.lifetime_s = lifetime_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if label:
            self.owner += f" {label}"

    def _fresh_body(self) -> bytes:
        return lease_body(self.owner, time.time(), self.lifetime_s)

    def _current(self) -> tuple[str, float] | None:
        """The current holder and expiry time; None when there is no lease object. An
        unreadable one counts as expired."""
        held = self.store.read_bytes(self.name)
        if held is None:
            return None
        try:
            document = json.loads(held)
            return str(document.get("owner", "")), float(document["expires"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return "", 0.0

    def try_acquire(self) -> bool:
        """Create the lease, or take it over from a holder that stopped renewing it; False
        while another holder keeps it alive."""
        if self.store.put_if_absent(self.name, self._fresh_body()):
            return True
        current = self._current()
        if current is not None:
            if current[1] >= time.time() and not holder_gone(current[0]):
                return False
            self.store.delete(self.name)
        return self.store.put_if_absent(self.name, self._fresh_body())

    def holder(self) -> str:
        """Who holds the lease now ("" when nobody does)."""
        current = self._current()
        return current[0] if current is not None else ""

    def is_mine(self) -> bool:
        current = self._current()
        return current is not None and current[0] == self.owner

    @contextmanager
    def held(self) -> Iterator[None]:
        """Renew the acquired lease while the block runs, and release it however the block
        ends: a return, an exception, Ctrl-C or SystemExit."""
        done = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(done,), daemon=True)
        renewer.name = f"lease {self.name}"
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            self.release()

    def _renew_until(self, done: threading.Event) -> None:
        while not done.wait(self.lifetime_s / 4):
            try:
                if not self.is_mine():
                    return
                self.store.write_bytes(self.name, self._fresh_body())
            except (StoryboardError, OSError):
                continue  # a store that fails now may answer at the next heartbeat

    def release(self) -> None:
        """Delete the lease if this holder still has it. A store that fails here is left
        alone: the lease then expires by itself."""
        try:
            if self.is_mine():
                self.store.delete(self.name)
        except (StoryboardError, OSError):
            pass


CLAIM_LIFETIME_S = LEASE_LIFETIME_S


def claim_render(target: SharedStore, fingerprint: str) -> Lease | None:
    """A claim on rendering this source fingerprint into `target` (TARGET's
    `.storyboard/claims/`): the watcher's and the studio's, so a change is rendered once;
    None while another holder's claim is alive."""
    lease = Lease(target, f"{CLAIMS_FOLDER}/{fingerprint}", CLAIM_LIFETIME_S)
    return lease if lease.try_acquire() else None
