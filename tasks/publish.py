"""Publish: a run's outputs in their target, with nothing left of scenes that are gone.

A run deletes only files it can prove a run wrote there before: those the target's previous
`run.json` lists under `outputs` or its previous `manifest.csv` names as a scene's image or
clip, read before this run writes anything (`previous_outputs`), and only under the names a
run writes (`is_output_name`). Anything else in the target, under `scenes/` too, is left
alone and named once in a warning.

A folder target is written in place by the steps before this one; here only the files of
the previous run that this one no longer makes are removed. An S3 target is rendered in a
local staging folder first and updated in an order that never shows a manifest naming a
missing file: scene files first, then the video and the exports, then the manifest, the
review page and run.json, and only then the deletions of what this run no longer makes.
Files whose bytes the bucket already holds are not uploaded again.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key
from clients.file_sync import local_etag, walk_files
from clients.layout import listed_outputs
from clients.storage import Storage, is_s3, open_storage
from domain.layout import (
    FINAL_FILES,
    MANIFEST_FILE,
    OUTPUT_FILES,
    SCENES_FOLDER,
    STAGING,
    VIDEO_FILE,
    WRITTEN_EVERY_RUN,
)
from domain.report import ScenePaths

SCENE_FILE = re.compile(r"(image\.[a-z0-9]{1,5}|clip\.mp4)")
FOREIGN_SHOWN = 5


@dataclass(frozen=True)
class OutputLocations:
    """Where the user finds the video and the manifest: paths, or s3:// URIs."""

    video: str
    manifest: str


def staging_folder(cache_dir: Path, target: str) -> Path:
    """An empty local folder in which the outputs for `target` are rendered first."""
    folder = cache_dir / STAGING / content_key(target)[:24]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def publish_rank(name: str) -> tuple[int, int, str]:
    """Where `name` comes in the upload order (scene files, other outputs, final names)."""
    if name in FINAL_FILES:
        return 2, FINAL_FILES.index(name), name
    return (0 if name.startswith(f"{SCENES_FOLDER}/") else 1), 0, name


def is_output_name(name: str) -> bool:
    """Whether `name` is one a run writes in its target: a top-level output, or a scene's
    image or clip in its own folder under `scenes/`."""
    if name in OUTPUT_FILES:
        return True
    parts = name.split("/")
    return (
        len(parts) == 3
        and parts[0] == SCENES_FOLDER
        and parts[1] not in ("", ".", "..")
        and SCENE_FILE.fullmatch(parts[2]) is not None
    )


def run_outputs(top_level: Iterable[str], published: Mapping[str, ScenePaths]) -> list[str]:
    """Every file this run writes in its target, as `run.json` lists them."""
    scene_files = {path for paths in published.values() for path in (paths.image, paths.clip)}
    names = {*WRITTEN_EVERY_RUN, *top_level, *scene_files}
    return sorted(name for name in names if name and is_output_name(name))


def _listed_in_manifest(data: bytes | None) -> set[str]:
    if not data:
        return set()
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        columns = [frame[column] for column in ("image_path", "clip_path") if column in frame]
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return set()
    return {name for column in columns for name in column.tolist() if name}


def previous_outputs(target: str) -> frozenset[str]:
    """The files the target's previous run says it wrote, under the names a run writes: the
    only files a run may delete. Read before this run writes anything."""
    storage = open_storage(target)
    listed = listed_outputs(storage)
    listed |= _listed_in_manifest(storage.read_bytes(MANIFEST_FILE))
    return frozenset(name for name in listed if is_output_name(name))


def _foreign(names: Iterable[str], known: set[str]) -> list[str]:
    """The files under `scenes/` that no run of ours made."""
    return sorted(n for n in names if n.startswith(f"{SCENES_FOLDER}/") and n not in known)


def _warn_foreign(target: str, foreign: list[str]) -> None:
    if foreign:
        shown = ", ".join(foreign[:FOREIGN_SHOWN])
        more = f" and {len(foreign) - FOREIGN_SHOWN} more" if len(foreign) > FOREIGN_SHOWN else ""
        get_run_logger().warning(
            "left %d files under %s/%s/ that no run made: %s%s",
            len(foreign),
            target.rstrip("/"),
            SCENES_FOLDER,
            shown,
            more,
        )


def upload_changed(
    folder: Path, storage: Storage, previous: frozenset[str]
) -> tuple[list[str], int, list[str], list[str]]:
    """Upload the staged outputs whose bytes `storage` lacks, in publish order, then delete
    the previous run's outputs that this run did not make: (uploaded, unchanged, deleted,
    files under scenes/ that no run made)."""
    held = {item.name: item.etag for item in storage.list(recursive=True)}
    staged = {path.relative_to(folder).as_posix(): path for path in walk_files(folder)}
    uploaded, unchanged = [], 0
    for name in sorted(staged, key=publish_rank):
        if held.get(name) == local_etag(staged[name]):
            unchanged += 1
            continue
        storage.upload(staged[name], name)
        uploaded.append(name)
    stale = sorted(name for name in held if name not in staged and name in previous)
    for name in stale:
        storage.delete(name)
    return uploaded, unchanged, stale, _foreign(held, {*staged, *previous})


def remove_stale_outputs(
    folder: Path, outputs: Iterable[str], previous: frozenset[str]
) -> tuple[list[str], list[str]]:
    """Remove from a folder target the previous run's outputs that this run did not make,
    and the scene folders they leave empty: (removed, files under scenes/ that no run made)."""
    made = set(outputs)
    removed = []
    for name in sorted(previous - made):
        path = folder / name
        if any(part.is_symlink() for part in (folder / SCENES_FOLDER, path.parent)):
            continue  # never through a link that may lead out of the target
        if path.is_symlink() or path.is_file():
            path.unlink()
            removed.append(name)
        if path.parent != folder and path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()
    held = [path.relative_to(folder).as_posix() for path in walk_files(folder / SCENES_FOLDER)]
    return removed, _foreign(held, {*made, *previous})


def _log_changes(target: str, uploaded: list[str], unchanged: int, removed: list[str]) -> None:
    logger = get_run_logger()
    logger.info("published %d files to %s (%d unchanged)", len(uploaded), target, unchanged)
    if removed:
        logger.info("removed %d outputs of scenes no longer in the storyboard", len(removed))


@task(name="publish", cache_policy=NO_CACHE)
def publish(
    folder: Path, target: str, outputs: list[str], previous: frozenset[str]
) -> OutputLocations:
    """Bring `target` to this run's `outputs`, deleting only what its previous run made and
    this one did not; where the video and the manifest now are."""
    if not is_s3(target):
        removed, foreign = remove_stale_outputs(folder, outputs, previous)
        if removed:
            get_run_logger().info("removed %d outputs this run no longer makes", len(removed))
        _warn_foreign(target, foreign)
        return OutputLocations(str(folder / VIDEO_FILE), str(folder / MANIFEST_FILE))
    storage = open_storage(target)
    uploaded, unchanged, removed, foreign = upload_changed(folder, storage, previous)
    _log_changes(target, uploaded, unchanged, removed)
    _warn_foreign(target, foreign)
    return OutputLocations(storage.uri_of(VIDEO_FILE), storage.uri_of(MANIFEST_FILE))
