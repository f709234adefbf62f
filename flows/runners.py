"""Where a run's tasks execute: threads of this process, or a Dask cluster (prefect-dask).

    thread          a thread pool in this process (the default)
    dask            a local Dask cluster of worker processes, started for the run
    dask=ADDRESS    an existing Dask scheduler, e.g. dask=tcp://scheduler:8786

Every run reports to a Prefect API: the one PREFECT_API_URL names, or, when it is unset, a
temporary Prefect server this process starts for the run (reachable from Dask workers on this
machine only), in a session of its own so that a terminal's Ctrl-C reaches the run and not the
server it is still reporting to (flows/temporary_server.py).
"""

from __future__ import annotations

import contextvars
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from configs.settings import Settings
from domain.errors import ConfigurationError

if TYPE_CHECKING:
    from flows.temporary_server import DetachedTemporaryServer

_ADDRESS = re.compile(r"^(tcp|tls|ucx|inproc)://[^\s/]+(:\d+)?/?$")


@dataclass(frozen=True)
class RunnerSpec:
    """A parsed `--task-runner` value."""

    kind: str
    address: str | None = None

    @property
    def distributed(self) -> bool:
        return self.kind == "dask"

    def __str__(self) -> str:
        return f"dask={self.address}" if self.address else self.kind


def parse_task_runner(value: str) -> RunnerSpec:
    """`thread`, `dask` or `dask=ADDRESS`; ConfigurationError for anything else."""
    if value in ("thread", "dask"):
        return RunnerSpec(value)
    kind, _, address = value.partition("=")
    if kind == "dask" and _ADDRESS.match(address):
        return RunnerSpec("dask", address.rstrip("/"))
    if kind == "dask":
        raise ConfigurationError(
            f"--task-runner {value}: the scheduler address must look like tcp://host:8786"
        )
    raise ConfigurationError(
        f"--task-runner {value} is not available: use thread, dask or dask=tcp://host:8786"
    )


def build_task_runner(spec: RunnerSpec, settings: Settings) -> Any:
    """The Prefect task runner for `spec`."""
    if not spec.distributed:
        from flows.stoppable_pool import StoppableThreadPoolTaskRunner

        return StoppableThreadPoolTaskRunner(max_workers=settings.generation.concurrency)
    # Dask's own INFO chatter (scheduler and worker start-up) is not the user's business.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from prefect_dask.task_runners import DaskTaskRunner

    if spec.address:
        return DaskTaskRunner(address=spec.address)
    workers = settings.dask.workers or os.cpu_count() or 2
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": settings.dask.threads_per_worker,
            "processes": True,
            "resources": settings.dask.worker_resources or None,
            "preload": ["flows.dask_worker_setup"],
        }
    )


TEMPORARY_API_VARIABLE = "STORYBOARD_TEMPORARY_API_URL"
"""Set to the temporary API server's URL while a run reports to one."""


def has_prefect_ui() -> bool:
    """Whether the API this process reports to has a UI (a temporary server has none)."""
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    return bool(api) and api != os.environ.get(TEMPORARY_API_VARIABLE)


def launch_temporary_api() -> DetachedTemporaryServer | None:
    """Without PREFECT_API_URL, launch this run's temporary API server now, so that it starts
    while the command loads the rest of itself; None when a server is configured."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    from flows.temporary_server import DetachedTemporaryServer

    server = DetachedTemporaryServer()
    server.launch()  # stopped at exit, after the last logs have been sent
    return server


@contextmanager
def prefect_api_for(
    spec: RunnerSpec, launched: DetachedTemporaryServer | None = None
) -> Iterator[None]:
    """The Prefect API this run reports to: the one PREFECT_API_URL names, or a temporary
    server of this run's own (`launched` early, or launched now)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = launched or launch_temporary_api()
    if server is None:
        connect_events_beside_the_run()
        yield
        return
    server.wait_until_ready()
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ[TEMPORARY_API_VARIABLE] = server.api_url  # it has no UI to send people to
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        connect_events_beside_the_run()
        yield


def connect_events_beside_the_run() -> None:
    """Connect Prefect's events client (a websocket to the API) in the background now.
    Prefect connects it on the run's first event, and the run's first task waits the
    connection's tenth of a second for it; connected here, it opens while the flow run is
    created."""
    from prefect.events.worker import EventsWorker

    def connect() -> None:
        with suppress(Exception):  # the run's first event meets it again, and reports it
            EventsWorker.instance()

    context = contextvars.copy_context()  # this run's API, not the settings at import
    opening = threading.Thread(
        target=context.run, args=(connect,), name="prefect events", daemon=True
    )
    opening.start()


def _is_dask(runner: object) -> bool:
    """Whether `runner` is Prefect's Dask task runner, without importing Dask when it is not
    (a run on threads never loads it)."""
    if "prefect_dask.task_runners" not in sys.modules:
        return False
    from prefect_dask.task_runners import DaskTaskRunner

    return isinstance(runner, DaskTaskRunner)


def on_dask() -> bool:
    """Whether the flow run in progress submits its tasks to Dask."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context is not None and _is_dask(context.task_runner)


def current_task_runner() -> str:
    """The flow run's task runner as `--task-runner` names it: thread, dask or dask=ADDRESS."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    if not _is_dask(runner):
        return "thread"
    return str(RunnerSpec("dask", getattr(runner, "address", None)))
