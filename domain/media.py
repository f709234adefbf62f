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

    def fingerprint(self) -> dict[str, Any]:
        """What determines a hosted model's image: everything but the label."""
        fields = asdict(self)
        fields.pop("label")
        return fields


@dataclass(frozen=True)
class ClipRequest:
    image: bytes
    seed: int
    cfg_scale: float
    motion_bucket_id: int

    def fingerprint(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["image"] = self.image  # hashed by content_key, never stored
        return fields


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    media_type: str
    seed: int
    api_calls: int = 1


@dataclass(frozen=True)
class GeneratedClip:
    data: bytes
    seed: int
    api_calls: int = 1


def image_extension(media_type: str) -> str:
    return {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(media_type, "bin")
