"""Reading the files of the contract in `domain/layout.py` that more than one part of the
product reads back: one reader each, so a file read by the watcher, the publisher and the
studio is parsed the same way everywhere (a file that is absent, unreadable or not the
expected shape reads as nothing, never as an error: TARGET is not ours alone)."""

from __future__ import annotations

import json
from typing import Any

from clients.storage import Storage
from domain.layout import RUN_FILE


def read_run_record(target: Storage) -> dict[str, Any] | None:
    """TARGET's `run.json` as written by the last run there (`tasks/manifest.py` writes it);
    None when there is none or it is not a JSON object."""
    data = target.read_bytes(RUN_FILE)
    if data is None:
        return None
    try:
        record = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


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
