"""The command was told to stop: long calls end at their next step, not at their last.

A denoising loop, a Whisper batch or an HTTP request runs in a task's thread, which a signal in
the main thread cannot interrupt; each checks `STOP_REQUESTED` between its steps (a diffusers
step-end callback, Whisper's segments, the scenes of a batch, each request) and raises
`StopRequested`. A thread blocked in a call that cannot be interrupted (a poll the gateway
holds open) is not waited for (`flows/stoppable_pool.py`): it ends with the process.
"""

from __future__ import annotations

import threading
from typing import Any

from domain.errors import StopRequested

STOP_REQUESTED = threading.Event()


def request_stop() -> None:
    STOP_REQUESTED.set()


def raise_if_stopping() -> None:
    if STOP_REQUESTED.is_set():
        raise StopRequested("stopped between two steps, as the command was told to stop")


def sleep_unless_stopping(seconds: float) -> None:
    """`time.sleep`, cut short (StopRequested) once the command is told to stop."""
    if STOP_REQUESTED.wait(max(0.0, seconds)):
        raise_if_stopping()


def stop_between_steps(
    _pipeline: Any, _step: int, _timestep: Any, tensors: dict[str, Any]
) -> dict[str, Any]:
    """A diffusers `callback_on_step_end`: the pipeline call ends after the step in flight."""
    raise_if_stopping()
    return tensors
