"""Preloaded into each worker process of the local Dask cluster (`--task-runner dask`).

The workers share the run's process group, so a Ctrl-C in the terminal (or a SIGTERM to the
group) reaches them too: each would print a traceback and drop its tasks while the run is still
stopping. Instead a worker takes the signal as the news that the run is stopping and goes
quiet, like the run's own console; the run then closes the cluster.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from flows.runtime import quiet_prefect_console, stop_logging


def _stopping(_signum: int, _frame: FrameType | None) -> None:
    stop_logging()


def dask_setup(_worker: Any) -> None:
    quiet_prefect_console()
    signal.signal(signal.SIGINT, _stopping)
    signal.signal(signal.SIGTERM, _stopping)
