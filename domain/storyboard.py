"""The schema of `storyboard.yaml`: a storyboard's title, style and per-scene overrides."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.media import ImageModel

LANGUAGE_CODE = r"^[a-z]{2,3}$"
"""A Whisper language code (en, fr, es, de, haw, yue, ...)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubjectSpec(_Strict):
    """LoRA or DreamBooth weights that put one character or object in every picture
    (`--backend local`)."""

    path: str = Field(min_length=1)
    """A .safetensors file or a folder of LoRA weights, relative to the storyboard folder."""
    scale: float = Field(default=1.0, ge=-4.0, le=4.0)
    trigger: str = ""
    """The word the weights were trained on; added to every prompt that lacks it."""


class SceneSpec(_Strict):
    """Per-scene overrides in `storyboard.yaml`."""

    id: str = Field(min_length=1)
    prompt: str | None = None
    language: str | None = Field(default=None, pattern=LANGUAGE_CODE)
    """The language the scene is narrated in (a Whisper code: en, fr, es, de, ...)."""
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    duration: float | None = Field(default=None, gt=0.0, le=600.0)
    skip: bool = False
    motion_bucket_id: int | None = Field(default=None, ge=0, le=255)
    noise_aug_strength: float | None = Field(default=None, ge=0.0, le=1.0)
    frames: int | None = Field(default=None, ge=2, le=257)
    fps: int | None = Field(default=None, ge=1, le=60)
    motion: str | None = Field(default=None, max_length=500)
    """What moves in the scene's clip, for a text-steered motion model ("slow dolly-in, the
    lion turns its head")."""


class StoryboardSpec(_Strict):
    """`storyboard.yaml` beside the recordings, or a `storyboards/NAME.yaml` storyboard file."""

    title: str | None = None
    source: str | None = None
    style: str = ""
    negative_prompt: str = ""
    motion_style: str = Field(default="", max_length=300)
    """Added to every scene's motion prompt ("gentle handheld camera")."""
    image_model: ImageModel | None = None
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    language: str | None = Field(default=None, pattern=LANGUAGE_CODE)
    music: str | None = None
    """Background music beside the recordings (a file name in the storyboard folder)."""
    subjects: tuple[SubjectSpec, ...] = ()
    blocklist: tuple[str, ...] = ()
    """Words and phrases the safety screen blocks in this storyboard, besides
    `safety.blocklist` and `safety.blocklist_file`."""
    scenes: tuple[SceneSpec, ...] = ()
    settings: dict[str, Any] = Field(default_factory=dict)

    def scene(self, scene_id: str) -> SceneSpec | None:
        return next((scene for scene in self.scenes if scene.id == scene_id), None)
