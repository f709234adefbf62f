"""Prefect's environment for a command-line run, set before Prefect is first imported.

With `PREFECT_API_URL` unset, flows run on Prefect's embedded API; with it set, they report
to that server. Either way a successful run must print no telemetry, no shutdown tracebacks
and no error-level lines, so the defaults below turn those off unless a user set them.
"""

from __future__ import annotations

import logging
import os

QUIET_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOG_PRINTS": "false",
    "PREFECT_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def configure_environment() -> None:
    for name, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)


class _DropShutdownNoise(logging.Filter):
    """The embedded server's task-run recorder logs a CancelledError when it is stopped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            return record.exc_info[0].__name__ != "CancelledError"
        return "CancelledError" not in record.getMessage()


def silence_shutdown_noise() -> None:
    noise = _DropShutdownNoise()
    for name in ("prefect", "prefect.server", "prefect.server.services.task_run_recorder"):
        logging.getLogger(name).addFilter(noise)
