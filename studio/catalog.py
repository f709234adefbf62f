"""The storyboards the studio shows: found under SOURCE exactly as the watcher finds them
(`flows/watch.py:storyboard_folders`: folders holding recordings, dot-folders ignored), each
rendered to the same relative path under TARGET (`join_location`), with what its last run
left there (`run.json`, `manifest.csv`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from clients.layout import read_run_record
from clients.storage import Storage, open_storage
from domain.layout import MANIFEST_FILE, RUN_FILE, VIDEO_FILE
from flows.watch import join_location, storyboard_folders
from studio.errors import not_found


@dataclass(frozen=True)
class Board:
    """One storyboard: its folder relative to SOURCE ("" for SOURCE itself) and where its
    inputs and outputs are."""

    path: str
    source: str
    target: str

    @property
    def label(self) -> str:
        return self.path or PurePosixPath(self.source.rstrip("/")).name or self.source

    def source_storage(self) -> Storage:
        return open_storage(self.source)

    def target_storage(self) -> Storage:
        return open_storage(self.target)


@dataclass(frozen=True)
class RunSummary:
    """What the storyboard's last run recorded in run.json."""

    title: str
    scenes: dict[str, int]
    last_run: datetime | None
    flow_run_id: str | None
    backend: str = ""
    cache_hits: int = 0
    api_calls: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def total(self) -> int:
        return sum(self.scenes.values())


def list_boards(source: str, target: str) -> list[Board]:
    """Every storyboard folder under SOURCE, in the watcher's order."""
    folders, _refused = storyboard_folders(open_storage(source).list(recursive=True))
    return [
        Board(folder.path, join_location(source, folder.path), join_location(target, folder.path))
        for folder in folders
    ]


def find_board(source: str, target: str, path: str) -> Board:
    """The storyboard at `path` under SOURCE; 404 unless the watcher would find it there."""
    for board in list_boards(source, target):
        if board.path == path:
            return board
    raise not_found(f"storyboard '{path}'")


def run_summary(target: Storage) -> RunSummary | None:
    """The last run's record, or None when the storyboard was never rendered there."""
    report = read_run_record(target)
    if report is None:
        return None
    modified = next((item.modified for item in target.list() if item.name == RUN_FILE), None)
    scenes = report.get("scenes")
    flow_run = report.get("flow_run_id")
    return RunSummary(
        title=str(report.get("title") or ""),
        scenes={str(k): int(v) for k, v in scenes.items()} if isinstance(scenes, dict) else {},
        last_run=datetime.fromtimestamp(modified, UTC) if modified is not None else None,
        flow_run_id=str(flow_run) if flow_run else None,
        backend=str(report.get("backend") or ""),
        cache_hits=int(report.get("cache_hits") or 0),
        api_calls=int(report.get("api_calls") or 0),
        raw=report,
    )


def manifest_rows(target: Storage) -> dict[str, dict[str, str]]:
    """manifest.csv's rows by scene id (empty when there is none)."""
    data = target.read_bytes(MANIFEST_FILE)
    if data is None:
        return {}
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig", errors="replace")))
    return {row["scene_id"]: dict(row) for row in reader if row.get("scene_id")}


def served_names(rows: dict[str, dict[str, str]]) -> set[str]:
    """The files of TARGET the studio serves: the video and each scene's image and clip."""
    names = {VIDEO_FILE}
    for row in rows.values():
        names.update(row[key] for key in ("image_path", "clip_path") if row.get(key))
    return names


def flow_run_url(prefect_ui: str | None, flow_run_id: str | None) -> str | None:
    if not prefect_ui or not flow_run_id:
        return None
    return f"{prefect_ui}/runs/flow-run/{quote(flow_run_id, safe='')}"
