"""Signals that land while pydantic serializes are delivered again a moment later.

Prefect turns SIGTERM into `TerminationSignal` and the command line turns SIGINT into
`Interrupted`, both raised in the main thread wherever it is. When that is inside a pydantic
serializer (as it often is while the flow submits tasks to Dask, which serializes Prefect's
context for each), pydantic wraps the signal into a `PydanticSerializationError`: the run then
fails as an internal error instead of stopping as asked. Inside `signals_outside_serializers`
such a signal is sent again 20 ms later, by which time the serializer has finished.

During a flow run Prefect's own SIGTERM bridge holds SIGTERM and unwinds the flow before the
command's handler hears of it, which takes as long as the longest task in flight: here the
command is told at once (`flows.runtime.told_to_stop`), so long calls end at their next step
and the command's grace period starts.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from flows.runtime import told_to_stop

REDELIVERY_S = 0.02
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _in_serializer(frame: FrameType | None) -> bool:
    while frame is not None:
        if f"{os.sep}pydantic" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _deferring(previous: Callable[[int, FrameType | None], Any]) -> Callable[..., None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        if not getattr(previous, "stops_the_command", False):
            told_to_stop(signum)  # Prefect's SIGTERM bridge: the command hears of it now
        if _in_serializer(frame):
            threading.Timer(REDELIVERY_S, os.kill, (os.getpid(), signum)).start()
            return
        previous(signum, frame)

    return handler


@contextmanager
def signals_outside_serializers() -> Iterator[None]:
    """Within: SIGINT and SIGTERM reach their handlers outside pydantic's serializers. Off the
    main thread (a served flow) signals are not ours to handle, and nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in _SIGNALS}
    for number, handler in previous.items():
        if callable(handler):
            signal.signal(number, _deferring(handler))
    try:
        yield
    finally:
        for number, handler in previous.items():
            if callable(handler):
                signal.signal(number, handler)
