"""Review verdicts, kept beside the outputs in the storyboard's TARGET as `review.json`:

    {"<scene_id>": {"verdict": "approved" | "needs_changes", "comment": "...",
                    "at": "2026-01-31T12:00:00Z", "audio_sha256": "..." | null,
                    "seed": 1234 | null}}

`at` is when it was given (UTC); `audio_sha256` and `seed` name the take that was reviewed
(from manifest.csv at that moment), so a verdict given to an earlier take shows as such. The
file is not a run's output: publishing never removes it, and the pipeline only reads it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from clients.storage import Storage
from domain.layout import REVIEW_FILE
from studio.errors import StudioError
from tasks.reviews import VERDICTS, parse_reviews

MAX_COMMENT = 4000
_LOCK = threading.Lock()


def read_reviews(storage: Storage) -> dict[str, dict[str, Any]]:
    """Verdicts by scene id; none when the file is missing or unreadable."""
    parsed = parse_reviews(storage.read_bytes(REVIEW_FILE))
    return {scene_id: _entry(value) for scene_id, value in parsed.items()}


def _entry(value: Mapping[str, Any]) -> dict[str, Any]:
    """A verdict with every key, whatever else the file holds."""
    seed = value.get("seed")
    return {
        "verdict": str(value["verdict"]),
        "comment": str(value.get("comment") or ""),
        "at": str(value.get("at") or ""),
        "audio_sha256": str(value["audio_sha256"]) if value.get("audio_sha256") else None,
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    }


def _seed(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def record_verdict(
    storage: Storage, scene_id: str, verdict: str, comment: str, take: Mapping[str, str]
) -> dict[str, Any]:
    """Keep the verdict on the scene's current take (`take`: its manifest row, if any)."""
    if verdict not in VERDICTS:
        raise StudioError(400, f"a verdict is one of {', '.join(VERDICTS)}")
    if len(comment) > MAX_COMMENT:
        raise StudioError(400, f"a comment is at most {MAX_COMMENT} characters")
    if verdict == "needs_changes" and not comment.strip():
        raise StudioError(400, "say what needs to change in the comment")
    entry = {
        "verdict": verdict,
        "comment": comment.strip(),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "audio_sha256": take.get("audio_sha256") or None,
        "seed": _seed(take.get("seed")),
    }
    with _LOCK:
        reviews = read_reviews(storage)
        reviews[scene_id] = entry
        text = json.dumps(reviews, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        storage.write_bytes(REVIEW_FILE, text.encode("utf-8"))
    return entry


def is_current(review: Mapping[str, Any], take: Mapping[str, str]) -> bool:
    """Whether `review` was given to the take `take` (the scene's manifest row) shows."""
    sha = review.get("audio_sha256")
    seed = review.get("seed")
    same_audio = not sha or sha == take.get("audio_sha256")
    same_seed = seed is None or seed == _seed(take.get("seed"))
    return same_audio and same_seed
