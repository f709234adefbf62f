"""The `storyboard-upload` flow: one storyboard folder rendered, the one an event named.

`storyboard listen` turns S3 notifications into Prefect events, and the `on-upload`
deployment's trigger runs this flow with the folder's URI once its events have been quiet for
the settle time (`flows/deployments.py:upload_trigger`). Only that folder is listed, never the
rest of the bucket; its render is claimed and fingerprinted as a watcher's is
(`flows/watch.py:render_claimed`), so a duplicate event, or a sweep that got there first,
renders nothing twice.
"""

from __future__ import annotations

import math
from dataclasses import replace

from prefect import flow, get_run_logger

from clients.storage import open_storage, safe_name
from configs.settings import Settings
from domain.errors import ConfigurationError, StorageError
from flows.watch import WatchedRender, WatchReport, not_due, render_claimed, storyboard_folders


def locate(folder: str, sources: list[str]) -> tuple[str, str]:
    """The listened source `folder` lies under, and its path relative to it."""
    for source in sources:
        base = source if source.endswith("/") else f"{source}/"
        if folder == base or folder.startswith(base):
            relative = folder[len(base) :].strip("/")
            try:
                return base, safe_name(relative) if relative else ""
            except StorageError as exc:
                raise ConfigurationError(f"{folder}: {exc}") from None
    raise ConfigurationError(f"{folder}: not under any listened source ({', '.join(sources)})")


@flow(name="storyboard-upload", log_prints=False)
def render_upload(
    folder: str,
    sources: list[str],
    target: str,
    settings: Settings,
    backend: str = "auto",
    task_runner: str = "thread",
) -> WatchReport:
    """Render the storyboard folder `folder` (a URI under one of `sources`) to the same
    relative path under `target`, unless it is unchanged since its last render."""
    logger = get_run_logger()
    source, relative = locate(folder, sources)
    storage = open_storage(folder)
    found, _ = storyboard_folders(storage.list(), storage.uploads_in_progress())
    report = WatchReport()
    here = next((candidate for candidate in found if candidate.path == ""), None)
    label = relative or "."
    if here is None:
        logger.info("%s: no recordings; nothing to render", label)
        return report
    destination = open_storage(target)
    if relative:
        destination = destination.child(relative)
    # the trigger waited for the folder to be quiet: no age counts as settling here
    here = replace(here, path=relative)
    waiting = not_due(here, destination, settled_before=math.inf)
    if waiting is not None:
        logger.info("%s: %s", label, waiting)
        getattr(report, waiting).append(label)
        return report
    watched = WatchedRender(source, target, settings, backend, task_runner)
    render_claimed(watched, here, destination, report)
    logger.info(
        "%s: %s", label, "rendered" if report.rendered else "unchanged or rendered elsewhere"
    )
    return report
