"""Hand-off: what goes to editors and to the review meeting, beside the video.

Editor timelines (`tasks/editorial.py`: `storyboard.otio`, and FCP XML and EDL as
`assembly.exports` asks) and the printable board (`tasks/board.py`: `storyboard.pdf`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from PIL import Image
from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key
from configs.settings import AssemblySettings
from domain.layout import ASSEMBLY, BOARD_FILE
from domain.report import ScenePaths
from domain.scene import SceneOutcome, TimelineEntry
from tasks.assembly.store import AssemblyStore, file_digest
from tasks.board import STILL_MAX_PX, BoardScene, board_scenes, write_board
from tasks.editorial import editorial_timeline, write_editorial_files

BOARD_FORMAT = 1
"""Bumped whenever the board is drawn differently."""


@task(name="hand-off files", cache_policy=NO_CACHE)
def hand_off(
    title: str,
    outcomes: list[SceneOutcome],
    timeline: list[TimelineEntry],
    published: dict[str, ScenePaths],
    settings: AssemblySettings,
    target: Path,
    cache_dir: Path,
) -> list[Path]:
    """The editor timelines and the board, written into `target`; the paths written. The
    board of an unchanged storyboard is the one made last time."""
    duration = max((entry.end_s for entry in timeline), default=0.0)
    cut = editorial_timeline(
        title=title,
        outcomes=outcomes,
        timeline=timeline,
        published=published,
        fps=settings.fps,
        video_duration_s=duration,
    )
    written = write_editorial_files(cut, target, settings.exports)
    panels = board_scenes(outcomes, timeline, published, target)
    key = board_key(title, panels, settings.fps, settings.board_page)
    store = AssemblyStore(cache_dir / ASSEMBLY)
    panels = [replace(panel, image=_still(store, panel.image)) for panel in panels]
    store.reuse_or_make(
        "boards",
        key,
        target / BOARD_FILE,
        lambda made: write_board(made, title, panels, settings.fps, settings.board_page),
    )
    return [*written, target / BOARD_FILE]


def _still(store: AssemblyStore, image: Path | None) -> Path | None:
    """The board's small JPEG of `image`; an unreadable image stays as it is (the board then
    says so in its panel)."""
    if image is None:
        return None
    try:
        return store.still(image, STILL_MAX_PX)
    except (OSError, ValueError, Image.DecompressionBombError):
        return image


def board_key(title: str, panels: Sequence[BoardScene], fps: float, page: str) -> str:
    """Everything the board shows: its panels (each image by its bytes), frame rate and page."""
    shown = [
        {**asdict(panel), "image": file_digest(panel.image) if panel.image else ""}
        for panel in panels
    ]
    return content_key("board", BOARD_FORMAT, title, shown, fps, page)
