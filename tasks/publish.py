"""Publish: a run's outputs, rendered into a local staging folder, uploaded to an S3 target."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key
from clients.storage import open_storage, upload_tree


def staging_folder(cache_dir: Path, target: str) -> Path:
    """An empty local folder in which the outputs for `target` are rendered first."""
    folder = cache_dir / "staging" / content_key(target)[:24]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def publish_outputs(folder: Path, target: str) -> list[str]:
    return upload_tree(folder, open_storage(target))


@task(name="publish", cache_policy=NO_CACHE)
def publish(folder: Path, target: str) -> list[str]:
    names = publish_outputs(folder, target)
    get_run_logger().info("uploaded %d files to %s", len(names), target)
    return names
