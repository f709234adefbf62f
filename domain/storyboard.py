"""The schema of `storyboard.yaml`: a storyboard's title, style and per-scene overrides."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


CHARACTER_NAME = r"^[\w][\w .'-]{0,39}$"
MAX_REFERENCES = 4
"""Reference pictures a character may have."""


class CharacterSpec(_Strict):
    """One character, drawn from its reference pictures in every scene that uses it."""

    name: str = Field(pattern=CHARACTER_NAME)
    references: tuple[str, ...] = Field(min_length=1, max_length=MAX_REFERENCES)
    """1-4 picture files beside the storyboard (relative to its folder)."""
    names: tuple[str, ...] = ()
    """Words that name the character in narrations and prompts ("Leo", "the lion"); its
    `name` always does."""
    lora: str | None = None
    """LoRA weights of the character, beside the storyboard (`--backend local`)."""
    strength: float = Field(default=0.6, ge=0.0, le=1.5)
    """How strongly the references steer the picture."""

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, *self.names)


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
    characters: tuple[str, ...] | None = None
    """The characters in this scene, by name; None: those its narration or prompt names."""
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
    characters: tuple[CharacterSpec, ...] = ()
    blocklist: tuple[str, ...] = ()
    """Words and phrases the safety screen blocks in this storyboard, besides
    `safety.blocklist` and `safety.blocklist_file`."""
    scenes: tuple[SceneSpec, ...] = ()
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _characters_are_known(self) -> StoryboardSpec:
        names = [character.name for character in self.characters]
        if len(set(names)) != len(names):
            raise ValueError("characters: two characters have the same name")
        for scene in self.scenes:
            unknown = sorted(set(scene.characters or ()) - set(names))
            if unknown:
                raise ValueError(f"scene '{scene.id}': no character named {', '.join(unknown)}")
        return self

    def character(self, name: str) -> CharacterSpec | None:
        return next((c for c in self.characters if c.name == name), None)

    def scene(self, scene_id: str) -> SceneSpec | None:
        return next((scene for scene in self.scenes if scene.id == scene_id), None)
