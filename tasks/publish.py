"""Publish: a run's outputs, rendered into a local staging folder, uploaded to an S3 target."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key
from clients.storage import is_s3, open_storage, upload_tree


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


@task(name="publish", cache_policy=NO_CACHE)
def publish(folder: Path, target: str) -> OutputLocations:
    """Upload the staged outputs when `target` is a bucket; where the outputs now are."""
    if not is_s3(target):
        return OutputLocations(str(folder / "storyboard.mp4"), str(folder / "manifest.csv"))
    storage = open_storage(target)
    names = upload_tree(folder, storage)
    get_run_logger().info("uploaded %d files to %s", len(names), target)
    return OutputLocations(storage.uri_of("storyboard.mp4"), storage.uri_of("manifest.csv"))
