"""Every deployment of the storyboard flows, defined once: name, flow, description, schedule.

`storyboard serve` serves `drop-folder` and `on-demand` from these definitions; `prefect.yaml`
declares the same deployments for `prefect deploy` (with work pools, and work-pool variants of
`on-demand`), and tests/test_deployments.py keeps it equal to this table.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Flow

from configs.settings import Settings
from flows.storyboard import storyboard
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
SERVED = (DROP_FOLDER, ON_DEMAND)
"""What `storyboard serve` serves."""


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
