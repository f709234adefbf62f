"""What a storyboard page shows per scene: the last render's row in manifest.csv, the scene's
recording and overrides in the source, and its review verdict, put together in scene order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from domain.layout import ReviewEntry
from studio.reviews import is_current
from studio.sources import SourceState


@dataclass(frozen=True)
class SceneCard:
    scene_id: str
    position: int
    """Its place among the cards, from 1."""
    recording: str | None
    """The recording's file name in the source (None: the source no longer has it)."""
    row: dict[str, str] = field(default_factory=dict)
    """Its manifest.csv row ({}: not rendered yet)."""
    skip: bool = False
    prompt_override: str | None = None
    seed_override: int | None = None
    review: ReviewEntry | None = None
    review_current: bool = True

    @property
    def status(self) -> str:
        if self.skip:
            return "skipped"
        return self.row.get("status") or ("not rendered yet" if self.recording else "removed")

    @property
    def css_status(self) -> str:
        return self.status.replace(" ", "_")

    @property
    def quoted_id(self) -> str:
        """The scene id as one URL path segment."""
        return quote(self.scene_id, safe="")

    @property
    def prompt(self) -> str:
        return self.row.get("prompt", "")

    @property
    def seed(self) -> str:
        return self.row.get("seed", "")


def scene_cards(
    state: SourceState,
    rows: Mapping[str, dict[str, str]],
    reviews: Mapping[str, ReviewEntry],
) -> list[SceneCard]:
    """A card per scene: the source's scenes in render order (skipped ones in their place),
    then scenes the last render had that the source no longer has."""
    ids = [*state.order, *(scene_id for scene_id in rows if scene_id not in state.order)]
    spec = state.spec
    cards = []
    for position, scene_id in enumerate(ids, start=1):
        override = spec.scene(scene_id) if spec is not None else None
        row = rows.get(scene_id, {})
        review = reviews.get(scene_id)
        cards.append(
            SceneCard(
                scene_id=scene_id,
                position=position,
                recording=state.files.get(scene_id),
                row=dict(row),
                skip=bool(override and override.skip),
                prompt_override=override.prompt if override else None,
                seed_override=override.seed if override else None,
                review=review,
                review_current=review is None or is_current(review, row),
            )
        )
    return cards


def known_scene(state: SourceState, rows: Mapping[str, dict[str, str]], scene_id: str) -> bool:
    """Whether `scene_id` is a scene of the source or of the last render."""
    return scene_id in state.files or scene_id in rows
