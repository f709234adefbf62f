"""Reading and writing the files of the contract in `domain/layout.py` that more than one part
of the product reads back: one reader and one writer each, so a file read by the watcher, the
publisher and the studio is parsed the same way everywhere. A file that is absent, unreadable
or not the expected shape reads as nothing, never as an error: TARGET is not ours alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from clients.storage import Storage
from domain.layout import (
    PENDING_FILE,
    REVIEW_FILE,
    REVIEW_VERDICTS,
    RUN_FILE,
    PendingApproval,
    PendingScene,
    ReviewEntry,
)


def _json_object(data: bytes | None) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def read_run_record(target: Storage) -> dict[str, Any] | None:
    """TARGET's `run.json` as written by the last run there (`tasks/manifest.py` writes it);
    None when there is none or it is not a JSON object."""
    return _json_object(target.read_bytes(RUN_FILE))


def rendered_fingerprint(target: Storage) -> str | None:
    """The source fingerprint the last run in TARGET rendered (set by a watcher's or the
    studio's render), or None."""
    value = (read_run_record(target) or {}).get("source_fingerprint")
    return value if isinstance(value, str) else None


def listed_outputs(target: Storage) -> set[str]:
    """The files the last run in TARGET says it wrote (`outputs`), as written."""
    outputs = (read_run_record(target) or {}).get("outputs", [])
    return (
        {name for name in outputs if isinstance(name, str)} if isinstance(outputs, list) else set()
    )


def read_reviews(target: Storage) -> dict[str, ReviewEntry]:
    """TARGET's `review.json`: the reviewers' verdicts by scene id (the studio writes them,
    the pipeline reads them); entries that are not a verdict are left out."""
    document = _json_object(target.read_bytes(REVIEW_FILE)) or {}
    return {
        str(scene_id): _review_entry(entry)
        for scene_id, entry in document.items()
        if isinstance(entry, dict) and entry.get("verdict") in REVIEW_VERDICTS
    }


def _review_entry(entry: Mapping[str, Any]) -> ReviewEntry:
    seed = entry.get("seed")
    return ReviewEntry(
        verdict=str(entry["verdict"]),
        comment=str(entry.get("comment") or ""),
        at=str(entry.get("at") or ""),
        audio_sha256=str(entry["audio_sha256"]) if entry.get("audio_sha256") else None,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )


def write_reviews(target: Storage, reviews: Mapping[str, ReviewEntry]) -> None:
    document = {scene_id: asdict(entry) for scene_id, entry in reviews.items()}
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    target.write_bytes(REVIEW_FILE, text.encode("utf-8"))


def read_pending(approval: Storage) -> PendingApproval | None:
    """TARGET/approval/pending.json, or None when there is none (or it cannot be read)."""
    raw = _json_object(approval.read_bytes(PENDING_FILE))
    if raw is None:
        return None
    try:
        return PendingApproval(
            storyboard=str(raw["storyboard"]),
            flow_run_id=str(raw["flow_run_id"]),
            api_url=str(raw["api_url"]),
            pause_key=str(raw["pause_key"]),
            round=int(raw["round"]),
            timeout_s=int(raw.get("timeout_s") or 0),
            asked_at=str(raw.get("asked_at") or ""),
            deadline=str(raw.get("deadline") or ""),
            sheet=str(raw.get("sheet") or ""),
            scenes=tuple(_pending_scene(entry) for entry in raw["scenes"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _pending_scene(entry: Mapping[str, Any]) -> PendingScene:
    return PendingScene(
        scene_id=str(entry["scene_id"]),
        order=int(entry["order"]),
        image=str(entry["image"]),
        seed=int(entry["seed"]),
        prompt=str(entry.get("prompt") or ""),
        transcript=str(entry.get("transcript") or ""),
        rejected_before=str(entry.get("rejected_before") or ""),
    )


def write_pending(approval: Storage, pending: PendingApproval) -> None:
    text = json.dumps(asdict(pending), indent=1, ensure_ascii=False)
    approval.write_bytes(PENDING_FILE, text.encode("utf-8"))
