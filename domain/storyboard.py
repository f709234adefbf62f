"""The schema of `storyboard.yaml`: a storyboard's title, style and per-scene overrides."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.media import ImageModel


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SceneSpec(_Strict):
    """Per-scene overrides in `storyboard.yaml`."""

    id: str = Field(min_length=1)
    prompt: str | None = None
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    duration: float | None = Field(default=None, gt=0.0, le=600.0)
    skip: bool = False


class StoryboardSpec(_Strict):
    """`storyboard.yaml` beside the recordings, or a `storyboards/NAME.yaml` storyboard file."""

    title: str | None = None
    source: str | None = None
    style: str = ""
    negative_prompt: str = ""
    image_model: ImageModel | None = None
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    language: str | None = None
    music: str | None = None
    """Background music beside the recordings (a file name in the storyboard folder)."""
    scenes: tuple[SceneSpec, ...] = ()
    settings: dict[str, Any] = Field(default_factory=dict)

    def scene(self, scene_id: str) -> SceneSpec | None:
        return next((scene for scene in self.scenes if scene.id == scene_id), None)
