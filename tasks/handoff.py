"""Hand-off: what goes to editors and to the review meeting, beside the video.

Editor timelines (`tasks/editorial.py`: `storyboard.otio`, and FCP XML and EDL as
`assembly.exports` asks) and the printable board (`tasks/board.py`: `storyboard.pdf`), which
needs only the scenes and the timeline: the flow draws it into the assembly store while the
video encodes (`drawn_board`), and the hand-off copies it into the target once the video is
there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from PIL import Image
from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key, copy_atomic
from configs.settings import AssemblySettings
from domain.layout import ASSEMBLY, BOARD_FILE
from domain.report import ScenePaths
from domain.scene import SceneOutcome, TimelineEntry
from tasks.assembly.render import planned_timeline
from tasks.assembly.store import AssemblyStore, file_digest
from tasks.assembly.timeline import SceneCut
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
    board = drawn_board(title, outcomes, timeline, settings, cache_dir)
    copy_atomic(board, target / BOARD_FILE)
    return [*written, target / BOARD_FILE]


def drawn_board(
    title: str,
    outcomes: Sequence[SceneOutcome],
    timeline: Sequence[TimelineEntry],
    settings: AssemblySettings,
    cache_dir: Path,
) -> Path:
    """The board of these scenes where they sit, in the assembly store: drawn now unless the
    same board was drawn before (the flow draws it while the video encodes, and the hand-off
    then finds it)."""
    panels = board_scenes(outcomes, timeline)
    key = board_key(title, panels, settings.fps, settings.board_page)
    store = AssemblyStore(cache_dir / ASSEMBLY)

    def draw(made: Path) -> None:
        stills = [replace(panel, image=_still(store, panel.image)) for panel in panels]
        write_board(made, title, stills, settings.fps, settings.board_page)

    return store.find_or_make("boards", key, ".pdf", draw)


def board_ahead(
    title: str,
    outcomes: Sequence[SceneOutcome],
    cuts: Sequence[SceneCut],
    settings: AssemblySettings,
    cache_dir: Path,
) -> Path:
    """The board drawn before the video is encoded: where each scene will sit comes from its
    narration (`planned_timeline`), as the assembly's own timeline does."""
    store = AssemblyStore(cache_dir / ASSEMBLY)
    timeline = planned_timeline(cuts, settings, store)
    return drawn_board(title, outcomes, timeline, settings, cache_dir)


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
