"""Scenes that ask for a picture at the same time go through the denoiser together.

Every generate task calls `Batcher.submit` from its own thread; one worker thread takes what
has arrived (up to `batch_size`, waiting `gather_s` for more), groups it by what must be equal
within one pipeline call (the size and the subjects), and runs each group as one call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from domain.media import ImageRequest

Pending = tuple[ImageRequest, "Future[Any]"]


def batch_key(request: ImageRequest) -> tuple[Any, ...]:
    return (request.width, request.height, request.subjects, request.characters)


class Batcher:
    def __init__(
        self,
        run: Callable[[list[ImageRequest]], list[Any]],
        batch_size: int,
        gather_s: float = 0.05,
    ) -> None:
        self._run = run
        self._batch_size = batch_size
        self._gather_s = gather_s if batch_size > 1 else 0.0
        self._queue: queue.Queue[Pending] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._starting = threading.Lock()

    def submit(self, request: ImageRequest) -> Any:
        """The picture for `request`, made alone or with others; raises what making it raised."""
        future: Future[Any] = Future()
        self._queue.put((request, future))
        with self._starting:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, daemon=True, name="batcher")
                self._worker.start()
        return future.result()

    def _work(self) -> None:
        while True:
            batch = self._gather()
            groups: dict[tuple[Any, ...], list[Pending]] = {}
            for pending in batch:
                groups.setdefault(batch_key(pending[0]), []).append(pending)
            for group in groups.values():
                self._run_group(group)

    def _gather(self) -> list[Pending]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self._gather_s
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _run_group(self, group: list[Pending]) -> None:
        try:
            results = self._run([request for request, _ in group])
        except BaseException as exc:  # delivered to every waiting scene, not lost in this thread
            for _, future in group:
                future.set_exception(exc)
            return
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)
