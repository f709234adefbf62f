"""What the console shows of Prefect's and asyncio's logging (flows/runtime.py)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator

import pytest

from flows import runtime


def record(name: str, message: str, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = None
    if error is not None:
        try:
            raise error
        except BaseException:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, exc_info)


CANCELLED = asyncio.CancelledError()


@pytest.fixture
def console_filter() -> Iterator[logging.Filter]:
    yield runtime._QuietExpectedErrors()
    runtime.STOPPING.clear()
    logging.disable(logging.NOTSET)


def test_cancelled_callbacks_from_asyncio_never_reach_the_console(
    console_filter: logging.Filter,
) -> None:
    """As when Prefect's runner stops `serve` from inside its event loop."""
    seen: list[logging.LogRecord] = []
    console = logging.Handler()
    console.emit = seen.append  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(console)
    try:
        runtime.quiet_prefect_console()
        asyncio_logger = logging.getLogger("asyncio")
        asyncio_logger.error("Exception in callback", exc_info=record("", "", CANCELLED).exc_info)
        asyncio_logger.error("a real asyncio error")
    finally:
        root.removeHandler(console)
    assert [r.getMessage() for r in seen] == ["a real asyncio error"]


def test_prefects_termination_record_silences_the_rest_of_the_run(
    console_filter: logging.Filter,
) -> None:
    aborted = "Crash detected! Execution was aborted by a termination signal."
    assert not console_filter.filter(record("prefect.flow_runs", aborted))
    assert runtime.STOPPING.is_set()
    assert not console_filter.filter(record("prefect.task_runs", "ffmpeg failed: 255"))
