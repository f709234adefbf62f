"""Hand-off: what goes to editors and to the review meeting, beside the video.

Editor timelines (`tasks/editorial.py`: `storyboard.otio`, and FCP XML and EDL as
`assembly.exports` asks) and the printable board (`tasks/board.py`: `storyboard.pdf`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.settings import AssemblySettings
from domain.report import ScenePaths
from domain.scene import SceneOutcome, TimelineEntry
from tasks.board import BOARD_FILE, board_scenes, write_board
from tasks.editorial import editorial_timeline, write_editorial_files


@task(name="hand-off files", cache_policy=NO_CACHE)
def hand_off(
    title: str,
    outcomes: list[SceneOutcome],
    timeline: list[TimelineEntry],
    published: dict[str, ScenePaths],
    settings: AssemblySettings,
    target: Path,
) -> list[Path]:
    """The editor timelines and the board, written into `target`; the paths written."""
    duration = max((entry.end_s for entry in timeline), default=0.0)
    cut = editorial_timeline(title, outcomes, timeline, published, settings.fps, duration)
    written = write_editorial_files(cut, target, settings.exports)
    panels = board_scenes(outcomes, timeline, published, target)
    write_board(target / BOARD_FILE, title, panels, settings.fps, settings.board_page)
    return [*written, target / BOARD_FILE]
