"""Prefect's environment for a command-line run, set before Prefect is first imported.

With `PREFECT_API_URL` unset, flows run on Prefect's embedded API; with it set, they report
to that server. Either way a successful run must print no telemetry, no shutdown tracebacks
and no error-level lines, so the defaults below turn those off unless a user set them; and
the run's OpenMP threads wait without spinning (`SHARED_CPU_DEFAULTS`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from clients.stopping import STOP_REQUESTED, request_stop
from domain.errors import StoryboardError, is_disk_full

QUIET_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOG_PRINTS": "false",
    "PREFECT_UI_ENABLED": "false",
    # A first run on a new machine migrates a fresh database: give it longer than 20 s.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "DO_NOT_TRACK": "1",
}

SHARED_CPU_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Whisper (CTranslate2) and torch wait for work in OpenMP threads that spin by default. A run
reads beside its other processes (ffmpeg encodes, the Prefect server, another Dask worker's
Whisper), whose cores spinning threads take: waiting passively cost a lone reading of the demo
2 % and saved two readings at once 10 % on a 2-core machine (two machines' renders sharing an
S3 cache on one host: 38 s instead of 52 s)."""


# A local Dask worker killed while it works (the run was stopped) leaves a semaphore that
# multiprocessing's resource tracker, a child process, reports after the command's last line.
KILLED_WORKER_NOISE = "ignore:resource_tracker:UserWarning"


def configure_environment() -> None:
    for name, value in {**QUIET_DEFAULTS, **SHARED_CPU_DEFAULTS}.items():
        os.environ.setdefault(name, value)
    warnings = [w for w in os.environ.get("PYTHONWARNINGS", "").split(",") if w]
    if KILLED_WORKER_NOISE not in warnings:
        os.environ["PYTHONWARNINGS"] = ",".join([*warnings, KILLED_WORKER_NOISE])


STOPPING = STOP_REQUESTED
"""Set when the command was told to stop (`stop_logging`): long calls end at their next step
(`clients/stopping.py`)."""
_STOP_HOOKS: list[Callable[[int], object]] = []


def stop_logging() -> None:
    """The command is stopping: say nothing more of the run. Prefect, Dask and the stages
    would otherwise log how every task in flight ended (the Prefect API still records it)."""
    request_stop()
    logging.disable(logging.CRITICAL)


def when_told_to_stop(hook: Callable[[int], object]) -> None:
    """Call `hook(signal number)` whenever a signal reaches a handler that is not the
    command's own (Prefect's SIGTERM bridge, during a flow run)."""
    _STOP_HOOKS.append(hook)


def told_to_stop(signum: int) -> None:
    stop_logging()
    for hook in _STOP_HOOKS:
        hook(signum)


class _QuietExpectedErrors(logging.Filter):
    """Keeps Prefect's console to one line per problem.

    Drops everything once the command is stopping, the CancelledError the embedded server's
    services log when they are stopped, and the traceback (not the message) of the pipeline's
    own errors and of a full disk, which the command line explains in one line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "Execution was aborted by" in record.getMessage():
            stop_logging()  # Prefect's own SIGTERM bridge got the signal first
        if STOPPING.is_set():
            return False
        error = record.exc_info[0] if record.exc_info else None
        if error is not None and error.__name__ == "CancelledError":
            return False
        if "CancelledError" in record.getMessage():
            return False
        if error is not None and (
            issubclass(error, StoryboardError) or is_disk_full(record.exc_info[1])  # type: ignore[index]
        ):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_prefect_console() -> None:
    quiet = _QuietExpectedErrors()
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.server", "asyncio"):
        logging.getLogger(name).addFilter(quiet)
    # asyncio's "Exception in callback" reaches Prefect's console through the root logger.
    for handler in (*logging.getLogger("prefect").handlers, *logging.getLogger().handlers):
        handler.addFilter(quiet)
    logging.getLogger("httpx").setLevel(logging.WARNING)
