"""Reviewers' verdicts from the studio, read from `review.json` beside the outputs
(`clients/layout.py`), for the manifest's `review` column and the review page.

The studio writes the file (studio/reviews.py); the pipeline only reads it. A verdict names
the take it was given to (the recording's sha256 and the seed): when the scene has a new take
since, its verdict is `outdated`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from clients import layout
from clients.storage import open_storage
from domain.errors import StorageError
from domain.layout import ReviewEntry
from domain.scene import SceneOutcome


@dataclass(frozen=True)
class Verdict:
    verdict: str
    """approved, needs_changes, or outdated (given to an earlier take)."""
    comment: str = ""


@task(name="read reviews", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def read_reviews(target: str) -> dict[str, ReviewEntry]:
    """The studio's verdicts for the storyboard at `target` (a folder or an S3 prefix)."""
    try:
        return layout.read_reviews(open_storage(target))
    except StorageError:
        return {}


def verdict_for(outcome: SceneOutcome, reviews: Mapping[str, ReviewEntry]) -> Verdict | None:
    """The scene's verdict, `outdated` when it was given to another recording or seed."""
    entry = reviews.get(outcome.scene_id)
    if entry is None:
        return None
    same_recording = entry.audio_sha256 in (None, outcome.recording.sha256)
    same_seed = entry.seed in (None, outcome.seed)
    if same_recording and same_seed:
        return Verdict(entry.verdict, entry.comment)
    return Verdict("outdated", entry.comment)
