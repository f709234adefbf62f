"""The storyboard flow on Dask, for deployments (`prefect.yaml`'s `on-demand-dask`).

A flow run's task runner is fixed when the run starts, so a deployment chooses it by its
entrypoint: this one fans the tasks out over the Dask scheduler at DASK_SCHEDULER_ADDRESS
(Dask's own variable, e.g. tcp://dask-scheduler:8786), or over a local cluster started for
the run when it is unset.
"""

from __future__ import annotations

import os

from configs.settings import Settings
from flows.runners import build_task_runner, parse_task_runner
from flows.storyboard import storyboard as storyboard_on_threads

_address = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip()
storyboard = storyboard_on_threads.with_options(
    task_runner=build_task_runner(
        parse_task_runner(f"dask={_address}" if _address else "dask"), Settings()
    )
)
