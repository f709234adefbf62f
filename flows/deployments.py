"""Every deployment of the storyboard flows, defined once: name, flow, description, schedule.

`storyboard serve` serves `drop-folder` and `on-demand` from these definitions; `prefect.yaml`
declares the same deployments for `prefect deploy` (with work pools, and work-pool variants of
`on-demand`), and tests/test_deployments.py keeps it equal to this table.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.events import DeploymentEventTrigger
from prefect.events.schemas.automations import Posture

from configs.settings import Settings
from domain.errors import ConfigurationError
from flows.listening import EVENT_PREFIX
from flows.storyboard import storyboard
from flows.uploads import render_upload
from flows.watch import watch_pass

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DeploymentDefinition:
    name: str
    flow: Flow[..., Any]
    description: str
    scheduled: bool = False
    """Run every `watch.interval_s` (or on `watch.cron`); otherwise only when asked."""

    @property
    def entrypoint(self) -> str:
        """`path/to/module.py:function`, relative to the project, as prefect.yaml writes it."""
        source = Path(inspect.getfile(self.flow.fn)).resolve().relative_to(PROJECT_ROOT)
        return f"{source.as_posix()}:{self.flow.fn.__name__}"


DROP_FOLDER = DeploymentDefinition(
    "drop-folder",
    watch_pass,
    "Renders every new or changed storyboard folder under the source.",
    scheduled=True,
)
ON_DEMAND = DeploymentDefinition(
    "on-demand", storyboard, "Renders one storyboard; give it source and target."
)
ON_UPLOAD = DeploymentDefinition(
    "on-upload",
    render_upload,
    "Renders one storyboard folder once its uploads have been quiet (storyboard listen).",
)
SERVED = (DROP_FOLDER, ON_DEMAND)
"""What `storyboard serve` serves."""
LISTENED = (ON_UPLOAD, DROP_FOLDER)
"""What `storyboard listen` serves: renders on events, and a slow sweep of each source."""


MIN_SETTLE_S = 10.0
"""The shortest `within` Prefect accepts for a proactive trigger."""


def check_settle(settle_s: float) -> None:
    """ConfigurationError for a quiet time shorter than a proactive trigger can wait."""
    if settle_s < MIN_SETTLE_S:
        raise ConfigurationError(
            f"--settle {settle_s:g}: storyboard listen waits at least {MIN_SETTLE_S:g} s "
            "(the shortest quiet time Prefect's proactive triggers take)"
        )


def upload_trigger(settle_s: float) -> DeploymentEventTrigger:
    """Run `on-upload` for a storyboard folder once its events have been quiet for `settle_s`
    seconds: after any of its events, expect another within `settle_s`; none (fewer than
    one) fires it. Each event restarts the wait, so an upload late in a burst is not lost,
    and the render goes to the folder of the last event (`for_each` the folder's URI)."""
    check_settle(settle_s)
    events = {f"{EVENT_PREFIX}*"}
    return DeploymentEventTrigger(
        name="storyboard folder settled",
        posture=Posture.Proactive,
        after=events,
        expect=events,
        for_each={"prefect.resource.id"},
        threshold=1,
        within=timedelta(seconds=settle_s),
        parameters={"folder": "{{ event.resource.id }}"},
    )


def served_parameters(
    definition: DeploymentDefinition,
    settings: Settings,
    backend: str,
    source: str,
    target: str,
    settle_s: float,
) -> dict[str, Any]:
    """The parameters `storyboard serve` gives a deployment: the watcher knows where to look."""
    shared = {"settings": settings.model_dump(mode="json"), "backend": backend}
    if definition is DROP_FOLDER:
        return {**shared, "source": source, "target": target, "settle_s": settle_s}
    return shared


def schedule_of(settings: Settings, interval_s: float | None, cron: str | None) -> dict[str, Any]:
    """`to_deployment`'s schedule arguments: a cron when one is given, else an interval."""
    cron = cron or settings.watch.cron
    return {"cron": cron} if cron else {"interval": interval_s or settings.watch.interval_s}


def runner_deployments(
    settings: Settings,
    backend: str,
    source: str,
    target: str,
    settle_s: float,
    schedule: dict[str, Any],
) -> list[Any]:
    """The served deployments, ready for `prefect.serve`."""
    return [
        definition.flow.to_deployment(
            name=definition.name,
            description=definition.description,
            parameters=served_parameters(
                definition=definition,
                settings=settings,
                backend=backend,
                source=source,
                target=target,
                settle_s=settle_s,
            ),
            **(schedule if definition.scheduled else {}),
        )
        for definition in SERVED
    ]


def listened_deployments(
    settings: Settings,
    backend: str,
    sources: list[str],
    target: str,
    settle_s: float,
    sweep_interval_s: float,
) -> list[Any]:
    """What `storyboard listen` serves, ready for `prefect.serve`: `on-upload` with its
    trigger, and a `drop-folder` sweep of each source every `sweep_interval_s`, which catches
    a lost event (`drop-folder-2`... for the second source on)."""
    shared = {"settings": settings.model_dump(mode="json"), "backend": backend}
    on_upload = ON_UPLOAD.flow.to_deployment(
        name=ON_UPLOAD.name,
        description=ON_UPLOAD.description,
        parameters={**shared, "sources": sources, "target": target},
        triggers=[upload_trigger(settle_s)],
    )
    sweeps = [
        DROP_FOLDER.flow.to_deployment(
            name=DROP_FOLDER.name if index == 0 else f"{DROP_FOLDER.name}-{index + 1}",
            description=DROP_FOLDER.description,
            parameters={**shared, "source": source, "target": target, "settle_s": settle_s},
            interval=sweep_interval_s,
        )
        for index, source in enumerate(sources)
    ]
    return [on_upload, *sweeps]
