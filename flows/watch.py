"""The `storyboard-watch` flow: the drop-folder service.

One pass finds every storyboard folder under SOURCE (a folder holding recordings), skips the
ones whose recordings are unchanged since their last render (the fingerprint in the target's
`run.json`) or still settling (modified less than `settle_s` ago), claims each remaining one
in the target and renders it with the `storyboard` flow to the same relative path under
TARGET. Unchanged scenes of a re-rendered storyboard come from the content cache.

A claim is a lease (clients/lease.py): an object created only if absent, so two watchers
never render the same change twice, renewed while the render runs and released however the
pass ends (Ctrl-C and SystemExit included). A watcher killed outright leaves its claim
behind; it stops being renewed and is taken over `clients/lease.py:CLAIM_LIFETIME_S` later.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from prefect import flow, get_run_logger

from clients.layout import rendered_fingerprint
from clients.lease import claim_render
from clients.storage import Storage, StoredObject, is_s3, open_storage, safe_name
from configs.settings import Settings
from domain.errors import FatalServiceError, SourceChangedError, StorageError, StoryboardError
from flows.runners import build_task_runner, parse_task_runner
from flows.storyboard import StoryboardResult, storyboard
from tasks.ingest import is_recording
from tasks.preflight import check_apart
from tasks.source_state import inputs_fingerprint, is_input, is_partial_upload


@dataclass(frozen=True)
class StoryboardFolder:
    path: str
    """Relative to SOURCE, `/`-separated; "" for SOURCE itself."""
    fingerprint: str
    newest_modified: float
    arriving: tuple[str, ...] = ()
    """Files that say an upload or copy into the folder is not finished (`.part`…)."""


@dataclass
class WatchReport:
    rendered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    settling: list[str] = field(default_factory=list)
    claimed_elsewhere: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    with_placeholders: list[str] = field(default_factory=list)


def join_location(base: str, path: str) -> str:
    """`path` (relative, already checked) under the location `base`, as a location string."""
    if not path:
        return base
    if is_s3(base):
        return f"{base.rstrip('/')}/{path}/"
    return str(Path(base) / path)


def folder_of(name: str) -> tuple[str, str] | None:
    """The storyboard folder (relative, "" for SOURCE) and file name of a listed `name`;
    None inside a hidden folder."""
    parts = PurePosixPath(name)
    if any(part.startswith(".") for part in parts.parts[:-1]):
        return None
    parent = parts.parent.as_posix()
    return ("" if parent == "." else parent), parts.name


def storyboard_folders(
    objects: list[StoredObject], uploading: Iterable[str] = ()
) -> tuple[list[StoryboardFolder], list[str]]:
    """Folders holding at least one recording, with a fingerprint of their inputs; and the
    folder names refused because they would leave SOURCE or TARGET. `uploading`: the names
    of uploads still under way (an S3 multipart upload not yet completed)."""
    groups: dict[str, list[StoredObject]] = defaultdict(list)
    partial: dict[str, list[str]] = defaultdict(list)
    for name in uploading:
        if (place := folder_of(name)) is not None and is_input(place[1]):
            partial[place[0]].append(f"{place[1]} (an upload not finished)")
    for item in objects:
        if (place := folder_of(item.name)) is None:
            continue
        folder, file_name = place
        if is_partial_upload(file_name):
            partial[folder].append(file_name)
        elif is_input(file_name):
            groups[folder].append(item)
    folders, refused = [], []
    for path, items in sorted(groups.items()):
        if not any(is_recording(PurePosixPath(item.name).name) for item in items):
            continue
        if path:
            try:
                safe_name(path)
            except StorageError:
                refused.append(path)
                continue
        folders.append(
            StoryboardFolder(
                path=path,
                fingerprint=inputs_fingerprint(items),
                newest_modified=max(item.modified for item in items),
                arriving=tuple(sorted(partial.get(path, ()))),
            )
        )
    return folders, refused


@dataclass(frozen=True)
class WatchedRender:
    """How a watcher renders a storyboard folder: to the same relative path under TARGET, as
    a subflow run on the task runner the watcher was started with."""

    source: str
    target: str
    settings: Settings
    backend: str
    task_runner: str

    def render(self, folder: StoryboardFolder) -> StoryboardResult:
        runner = build_task_runner(parse_task_runner(self.task_runner), self.settings)
        return storyboard.with_options(task_runner=runner)(
            source=join_location(self.source, folder.path),
            target=join_location(self.target, folder.path),
            settings=self.settings,
            backend=self.backend,
            source_fingerprint=folder.fingerprint,
        )


def render_claimed(
    watched: WatchedRender, folder: StoryboardFolder, destination: Storage, report: WatchReport
) -> None:
    """Claim `folder`'s change and render it, unless another watcher holds the claim or has
    rendered it meanwhile; the outcome goes into `report`."""
    label, logger = folder.path or ".", get_run_logger()
    render_claim = claim_render(destination, folder.fingerprint)
    if render_claim is None:
        report.claimed_elsewhere.append(label)
        return
    with render_claim.held():
        if rendered_fingerprint(destination) == folder.fingerprint:
            report.unchanged.append(label)  # rendered meanwhile by the claim's last holder
            return
        try:
            result = watched.render(folder)
        except FatalServiceError:
            raise
        except SourceChangedError as exc:
            logger.info("%s: %s; rendered again once it is", label, exc)
            report.settling.append(label)
            return
        except StoryboardError as exc:
            logger.warning("%s: not rendered: %s", label, exc)
            report.failed[label] = str(exc)
            return
    report.rendered.append(label)
    if result.report.scenes.get("ok", 0) != sum(result.report.scenes.values()):
        report.with_placeholders.append(label)


def not_due(
    folder: StoryboardFolder, destination: Storage, settled_before: float
) -> Literal["unchanged", "settling"] | None:
    """Why `folder` is not rendered in this pass: its render is `unchanged`, or it is still
    `settling` (modified after `settled_before`, or files in it still arriving); None: due."""
    if rendered_fingerprint(destination) == folder.fingerprint:
        return "unchanged"
    if folder.newest_modified > settled_before:
        return "settling"
    if folder.arriving:
        get_run_logger().info(
            "%s: still arriving (%s); rendered once it is whole",
            folder.path or ".",
            folder.arriving[0],
        )
        return "settling"
    return None


@flow(name="storyboard-watch", log_prints=False)
def watch_pass(
    source: str,
    target: str,
    settings: Settings,
    backend: str = "auto",
    settle_s: float = 30.0,
    task_runner: str = "thread",
) -> WatchReport:
    """One pass over SOURCE: render every new or changed, settled storyboard folder."""
    check_apart(source, target, watching=True)
    logger = get_run_logger()
    watched = WatchedRender(source, target, settings, backend, task_runner)
    report = WatchReport()
    source_storage, target_storage = open_storage(source), open_storage(target)
    folders, report.refused = storyboard_folders(
        source_storage.list(recursive=True), source_storage.uploads_in_progress()
    )
    for path in report.refused:
        logger.warning("refusing folder %r: its name would leave the source or target", path)
    now = time.time()
    for folder in folders:
        destination = target_storage.child(folder.path) if folder.path else target_storage
        waiting = not_due(folder, destination, now - settle_s)
        if waiting is not None:
            getattr(report, waiting).append(folder.path or ".")
            continue
        render_claimed(watched, folder, destination, report)
    logger.info(
        "watch pass: %d rendered, %d unchanged, %d settling, %d taken by another watcher",
        len(report.rendered),
        len(report.unchanged),
        len(report.settling),
        len(report.claimed_elsewhere),
    )
    return report
