"""Publish: a run's outputs in their target, with nothing left of scenes that are gone.

A folder target is written in place by the steps before this one; here only the `scenes/`
folders of scenes no longer in the storyboard are removed. An S3 target is rendered in a
local staging folder first and updated in an order that never shows a manifest naming a
missing file: scene files first, then the video and the exports, then the manifest, the
review page and run.json, and only then the deletions of what this run no longer makes.
Files whose bytes the bucket already holds are not uploaded again.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key
from clients.storage import Storage, is_s3, local_etag, open_storage, walk_files
from domain.report import ScenePaths

SCENES_FOLDER = "scenes"
FINAL_NAMES = ("manifest.csv", "index.html", "run.json")
"""Published last, in this order: the files that name the others."""
OUTPUT_NAMES = frozenset(
    {
        "storyboard.mp4", "storyboard.srt", "storyboard.vtt", "storyboard.otio",
        "storyboard.xml", "storyboard.edl", "storyboard.pdf", "contact_sheet.png",
        *FINAL_NAMES,
    }
)  # fmt: skip
"""Every top-level file a run may write: one this run did not write is removed."""


@dataclass(frozen=True)
class OutputLocations:
    """Where the user finds the video and the manifest: paths, or s3:// URIs."""

    video: str
    manifest: str


def staging_folder(cache_dir: Path, target: str) -> Path:
    """An empty local folder in which the outputs for `target` are rendered first."""
    folder = cache_dir / "staging" / content_key(target)[:24]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def publish_rank(name: str) -> tuple[int, int, str]:
    """Where `name` comes in the upload order (scene files, other outputs, final names)."""
    if name in FINAL_NAMES:
        return 2, FINAL_NAMES.index(name), name
    return (0 if name.startswith(f"{SCENES_FOLDER}/") else 1), 0, name


def is_ours(name: str) -> bool:
    return name.startswith(f"{SCENES_FOLDER}/") or name in OUTPUT_NAMES


def upload_changed(folder: Path, storage: Storage) -> tuple[list[str], int, list[str]]:
    """Upload the staged outputs whose bytes `storage` lacks, in publish order, then delete
    the outputs it holds that this run did not make: (uploaded, unchanged, deleted)."""
    held = {item.name: item.etag for item in storage.list(recursive=True)}
    staged = {path.relative_to(folder).as_posix(): path for path in walk_files(folder)}
    uploaded, unchanged = [], 0
    for name in sorted(staged, key=publish_rank):
        if held.get(name) == local_etag(staged[name]):
            unchanged += 1
            continue
        storage.upload(staged[name], name)
        uploaded.append(name)
    stale = sorted(name for name in held if name not in staged and is_ours(name))
    for name in stale:
        storage.delete(name)
    return uploaded, unchanged, stale


def remove_gone_scenes(folder: Path, published: Mapping[str, ScenePaths]) -> list[str]:
    """Remove the `scenes/` folders of a folder target that no scene of this run uses."""
    scenes = folder / SCENES_FOLDER
    if not scenes.is_dir():
        return []
    kept = {
        PurePosixPath(path).parts[1]
        for paths in published.values()
        for path in (paths.image, paths.clip)
        if path
    }
    removed = []
    for entry in sorted(scenes.iterdir()):
        if entry.name in kept:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(f"{SCENES_FOLDER}/{entry.name}")
    return removed


def _log_changes(target: str, uploaded: list[str], unchanged: int, removed: list[str]) -> None:
    logger = get_run_logger()
    logger.info("published %d files to %s (%d unchanged)", len(uploaded), target, unchanged)
    if removed:
        logger.info("removed %d outputs of scenes no longer in the storyboard", len(removed))


@task(name="publish", cache_policy=NO_CACHE)
def publish(folder: Path, target: str, published: Mapping[str, ScenePaths]) -> OutputLocations:
    """Bring `target` to this run's outputs; where the video and the manifest now are."""
    if not is_s3(target):
        removed = remove_gone_scenes(folder, published)
        if removed:
            get_run_logger().info("removed %d folders of scenes no longer there", len(removed))
        return OutputLocations(str(folder / "storyboard.mp4"), str(folder / "manifest.csv"))
    storage = open_storage(target)
    uploaded, unchanged, removed = upload_changed(folder, storage)
    _log_changes(target, uploaded, unchanged, removed)
    return OutputLocations(storage.uri_of("storyboard.mp4"), storage.uri_of("manifest.csv"))
