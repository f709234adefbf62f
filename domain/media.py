"""What a generation backend is asked for and what it answers, whichever backend it is.

Results are shaped like the hosted API's (an encoded image; an H.264 clip of 25 frames at
6 fps, 1024x576), so the stages after generation cannot tell one backend from another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

SVD_WIDTH = 1024
SVD_HEIGHT = 576
SVD_FRAMES = 25
SVD_FPS = 6

ImageModel = Literal["sdxl", "sd3-medium", "flux.1-dev", "flux.1-schnell"]
FloatAudio = np.ndarray[Any, np.dtype[np.float32]]
"""Mono samples in [-1, 1]."""


@dataclass(frozen=True)
class Subject:
    """LoRA or DreamBooth weights applied to every picture, with the word they answer to."""

    path: str
    scale: float = 1.0
    trigger: str = ""


@dataclass(frozen=True)
class CharacterReference:
    """A character a scene's picture shows, with the pictures it is drawn from."""

    name: str
    references: tuple[str, ...]
    """Its reference pictures, as files on this machine."""
    strength: float = 0.6
    lora: str | None = None


@dataclass(frozen=True)
class ClipMotion:
    """A scene's own motion settings (`storyboard.yaml`); None: the backend's settings."""

    motion_bucket_id: int | None = None
    noise_aug_strength: float | None = None
    frames: int | None = None
    fps: int | None = None
    text: str = ""
    """The scene's `motion:`."""
    style: str = ""
    """The storyboard's `motion_style:`."""
    span_s: float = 0.0
    """How long the scene lasts (its narration, or its `duration:`)."""


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    negative_prompt: str
    model: str
    seed: int
    cfg_scale: float
    sampler: str
    steps: int
    width: int = SVD_WIDTH
    height: int = SVD_HEIGHT
    label: str = ""
    """A caption for draft panels ("Scene 3"); hosted models never see it."""
    subjects: tuple[Subject, ...] = ()
    motion: ClipMotion = ClipMotion()
    style: str = ""
    """The storyboard's style, with which `prompt` ends: kept whole when a prompt is cut."""
    characters: tuple[CharacterReference, ...] = ()
    """The characters the scene names, in order of first mention."""

    def fingerprint(self) -> dict[str, Any]:
        """What determines a hosted model's image: everything but the label and what only the
        local backend reads (its subjects and characters; the motion belongs to the clip; the
        style is in the prompt already)."""
        fields = asdict(self)
        for name in ("label", "subjects", "motion", "style", "characters"):
            fields.pop(name)
        return fields


@dataclass(frozen=True)
class ClipRequest:
    image: bytes
    seed: int
    cfg_scale: float
    motion_bucket_id: int
    noise_aug_strength: float | None = None
    frames: int | None = None
    fps: int | None = None
    prompt: str = ""
    """The motion prompt, for a model that takes text."""
    negative_prompt: str = ""
    span_s: float = 0.0
    """How long the scene lasts, for a clip as long as its narration."""

    def fingerprint(self) -> dict[str, Any]:
        """What determines a clip from a model that follows its picture alone (SVD): not the
        text, nor the scene's length; a backend that reads them adds what it reads."""
        fields = {key: value for key, value in asdict(self).items() if value is not None}
        for name in ("prompt", "negative_prompt", "span_s"):
            fields.pop(name)
        fields["image"] = self.image  # hashed by content_key, never stored
        return fields


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    media_type: str
    seed: int
    api_calls: int = 1
    resent: int = 0
    """Requests sent again after their answer was lost (each may have been paid twice)."""
    prompt: str = ""
    """The prompt as the model was sent it, where a backend changed it (trigger words, a cut
    to the text encoder's length); "" when it was the request's."""
    prompt_note: str = ""
    model: str = ""
    """The model that made it, where the backend says (a fallback may differ from the one
    asked for)."""


@dataclass(frozen=True)
class GeneratedClip:
    data: bytes
    seed: int
    api_calls: int = 1
    resent: int = 0
    model: str = ""
    """The motion model that made it, where the backend says."""
    prompt: str = ""
    """The motion prompt it was sent, for a model that takes text."""


def image_extension(media_type: str) -> str:
    return {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(media_type, "bin")
