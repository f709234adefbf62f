"""Reviewers' verdicts from the studio, read from `review.json` beside the outputs, for the
manifest's `review` column and the review page.

The studio writes the file (studio/reviews.py); the pipeline only reads it. A verdict names
the take it was given to (the recording's sha256 and the seed): when the scene has a new take
since, its verdict is `outdated`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.storage import open_storage
from domain.errors import StorageError
from domain.layout import REVIEW_FILE
from domain.scene import SceneOutcome

VERDICTS = ("approved", "needs_changes")


@dataclass(frozen=True)
class Verdict:
    verdict: str
    """approved, needs_changes, or outdated (given to an earlier take)."""
    comment: str = ""


def parse_reviews(data: bytes | None) -> dict[str, dict[str, Any]]:
    """The verdicts by scene id in a review file's bytes; none when it is missing or unusable."""
    if not data:
        return {}
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {
        str(scene): entry
        for scene, entry in document.items()
        if isinstance(entry, dict) and entry.get("verdict") in VERDICTS
    }


@task(name="read reviews", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def read_reviews(target: str) -> dict[str, dict[str, Any]]:
    """The studio's verdicts for the storyboard at `target` (a folder or an S3 prefix)."""
    try:
        return parse_reviews(open_storage(target).read_bytes(REVIEW_FILE))
    except StorageError:
        return {}


def verdict_for(outcome: SceneOutcome, reviews: Mapping[str, Mapping[str, Any]]) -> Verdict | None:
    """The scene's verdict, `outdated` when it was given to another recording or seed."""
    entry = reviews.get(outcome.scene_id)
    if entry is None:
        return None
    comment = str(entry.get("comment") or "")
    same_recording = entry.get("audio_sha256") in (None, outcome.recording.sha256)
    same_seed = entry.get("seed") in (None, outcome.seed)
    if same_recording and same_seed:
        return Verdict(str(entry["verdict"]), comment)
    return Verdict("outdated", comment)
