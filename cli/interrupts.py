"""Ctrl-C and SIGTERM end a run at once.

The first SIGINT or SIGTERM raises `Interrupted` in the main thread, so the run unwinds as
it does for Ctrl-C: Prefect marks the flow run, finally-blocks release what they hold (a
watcher's claim, a Dask cluster) and the command prints one line and exits 130 or 143. If
unwinding takes longer than `GRACE_S`, or a second signal arrives, the command kills the
child processes it started (the temporary Prefect server, local Dask workers) and exits at
once with the same status. After the first signal the console says nothing more of the run
(the subprocesses the signal also reached fail their tasks, which is no news). Outputs are
written whole or not at all (atomic renames) and `run.json` last, so nothing an interrupted
run leaves behind is trusted by a re-run.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

from flows.runtime import stop_logging, when_told_to_stop

GRACE_S = 8.0


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; `exit_status` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else "stopped by SIGTERM"


def install() -> None:
    """From now on SIGINT and SIGTERM stop the command (main thread only)."""
    signal.signal(signal.SIGINT, _first_signal)
    signal.signal(signal.SIGTERM, _first_signal)
    when_told_to_stop(_stopping)


def exit_at_once_on_signal(status: int) -> None:
    """The command is done and shutting down (Prefect drains its logs, stops its server): a
    signal now ends it at once, without the tracebacks of interrupted clean-up."""

    def hard_exit(signum: int, _frame: FrameType | None) -> None:
        exit_now(Interrupted(signum), status if status else 128 + signum)

    signal.signal(signal.SIGINT, hard_exit)
    signal.signal(signal.SIGTERM, hard_exit)


_received: list[Interrupted] = []


def received() -> Interrupted | None:
    """The signal that stopped the command, if one did: whatever the error it surfaced as (a
    library may wrap the exception, as pydantic does when it lands in a serializer)."""
    return _received[0] if _received else None


def _stopping(signum: int) -> Interrupted:
    """The first signal: say nothing more of the run, and end it at once if it has not ended
    within `GRACE_S`. A second signal ends it at once."""
    if _received:
        exit_now(_received[0])
    stop_logging()
    stopping = Interrupted(signum)
    _received.append(stopping)
    watchdog = threading.Timer(GRACE_S, exit_now, (stopping,))
    watchdog.daemon = True
    watchdog.start()
    return stopping


def _first_signal(signum: int, _frame: FrameType | None) -> None:
    raise _stopping(signum)


_first_signal.stops_the_command = True  # type: ignore[attr-defined]


def exit_now(stopping: Interrupted, status: int | None = None) -> NoReturn:
    """One line, and out: the temporary server and child processes stopped, no thread
    waited for (one may be blocked in a call that cannot be interrupted)."""
    from flows.temporary_server import stop_all

    stop_logging()
    stop_all()
    for child in multiprocessing.active_children():
        child.kill()
    sys.stderr.write(f"storyboard: {stopping.message}\n")
    sys.stderr.flush()
    os._exit(stopping.exit_status if status is None else status)
