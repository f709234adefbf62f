"""Review verdicts, kept beside the outputs in the storyboard's TARGET as `review.json`:

    {"<scene_id>": {"verdict": "approved" | "needs_changes", "comment": "...",
                    "at": "2026-01-31T12:00:00Z", "audio_sha256": "..." | null,
                    "seed": 1234 | null}}

`at` is when it was given (UTC); `audio_sha256` and `seed` name the take that was reviewed
(from manifest.csv at that moment), so a verdict given to an earlier take shows as such. The
file is not a run's output: publishing never removes it, and the pipeline only reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from clients.layout import read_reviews, write_reviews
from clients.storage import Storage
from domain.layout import REVIEW_VERDICTS, ReviewEntry
from studio.errors import StudioError

MAX_COMMENT = 4000
_LOCK = threading.Lock()


def _seed(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def record_verdict(
    storage: Storage, scene_id: str, verdict: str, comment: str, take: Mapping[str, str]
) -> ReviewEntry:
    """Keep the verdict on the scene's current take (`take`: its manifest row, if any)."""
    if verdict not in REVIEW_VERDICTS:
        raise StudioError(400, f"a verdict is one of {', '.join(REVIEW_VERDICTS)}")
    if len(comment) > MAX_COMMENT:
        raise StudioError(400, f"a comment is at most {MAX_COMMENT} characters")
    if verdict == "needs_changes" and not comment.strip():
        raise StudioError(400, "say what needs to change in the comment")
    entry = ReviewEntry(
        verdict=verdict,
        comment=comment.strip(),
        at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        audio_sha256=take.get("audio_sha256") or None,
        seed=_seed(take.get("seed")),
    )
    with _LOCK:
        write_reviews(storage, {**read_reviews(storage), scene_id: entry})
    return entry


def is_current(review: ReviewEntry, take: Mapping[str, str]) -> bool:
    """Whether `review` was given to the take `take` (the scene's manifest row) shows."""
    same_audio = not review.audio_sha256 or review.audio_sha256 == take.get("audio_sha256")
    same_seed = review.seed is None or review.seed == _seed(take.get("seed"))
    return same_audio and same_seed
