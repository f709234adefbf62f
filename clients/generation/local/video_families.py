"""The image-to-video families `--backend local` animates with, side by side in one table:
how each is recognised, called, and what it accepts (frames, fps, sizes, steps, guidance).

A family is recognised from the pipeline folder's `model_index.json` (`_class_name`, and for
Wan whether it carries a CLIP image encoder: 2.1 does, 2.2 TI2V does not). A setting left
unset takes the family's default; a value the family cannot take is rounded to the nearest it
can (frames to its `frame_step`·k+1, sizes to its multiple) and capped at its maximum.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from domain.errors import ConfigurationError


@dataclass(frozen=True)
class VideoFamily:
    name: str
    loader: str
    """The diffusers pipeline class the folder is loaded with."""
    takes_text: bool
    """Whether the clip follows a motion prompt (SVD follows only its picture)."""
    frame_step: int
    """Frame counts the family accepts: frame_step·k + 1 (1: any count)."""
    max_frames: int
    default_frames: int
    """A clip's frames with `clip_length: fixed` and no `frames` set."""
    fps: int
    size_multiple: int
    size: tuple[int, int]
    """Its default (width, height)."""
    steps: int
    guidance: float
    frame_rate_option: bool = False
    """Whether its call takes the clip's fps (`frame_rate`, LTX-Video)."""

    def frames_for(self, seconds: float, fps: int) -> int:
        """The fewest frames the family accepts that last at least `seconds` at `fps`."""
        wanted = max(2, math.ceil(seconds * fps - 1e-6))
        return self.accepted_frames(wanted, at_least=True)

    def accepted_frames(self, frames: int, *, at_least: bool = False) -> int:
        """`frames` as the family accepts them: frame_step·k + 1, capped at `max_frames`."""
        if self.frame_step > 1:
            steps = (frames - 1) / self.frame_step
            k = math.ceil(steps) if at_least else round(steps)
            frames = max(1, k) * self.frame_step + 1
        return max(2, min(frames, self.max_frames))

    def accepted_size(self, width: int | None, height: int | None) -> tuple[int, int]:
        def fitted(side: int) -> int:
            return max(self.size_multiple, round(side / self.size_multiple) * self.size_multiple)

        return fitted(width or self.size[0]), fitted(height or self.size[1])


SVD = VideoFamily(
    name="svd",
    loader="StableVideoDiffusionPipeline",
    takes_text=False,
    frame_step=1,
    max_frames=64,
    default_frames=25,
    fps=6,
    size_multiple=64,
    size=(1024, 576),
    steps=25,
    guidance=1.8,
)
WAN_21 = VideoFamily(
    name="wan2.1-i2v",
    loader="WanImageToVideoPipeline",
    takes_text=True,
    frame_step=4,
    max_frames=81,
    default_frames=81,
    fps=16,
    size_multiple=16,
    size=(832, 480),
    steps=40,
    guidance=5.0,
)
WAN_22_TI2V = VideoFamily(
    name="wan2.2-ti2v",
    loader="WanImageToVideoPipeline",
    takes_text=True,
    frame_step=4,
    max_frames=121,
    default_frames=121,
    fps=24,
    size_multiple=32,
    size=(1280, 704),
    steps=40,
    guidance=5.0,
)
LTX = VideoFamily(
    name="ltx-video",
    loader="LTXImageToVideoPipeline",
    takes_text=True,
    frame_step=8,
    max_frames=257,
    default_frames=121,
    fps=24,
    size_multiple=32,
    size=(704, 480),
    steps=40,
    guidance=3.0,
    frame_rate_option=True,
)
FAMILIES = (SVD, WAN_21, WAN_22_TI2V, LTX)
_BY_CLASS = {
    "StableVideoDiffusionPipeline": SVD,
    "LTXImageToVideoPipeline": LTX,
    "LTXPipeline": LTX,
}
_WAN_CLASSES = ("WanImageToVideoPipeline", "WanPipeline")


def recognise(folder: Path) -> VideoFamily:
    """The family of the pipeline saved in `folder`; ConfigurationError for one this backend
    cannot animate with."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigurationError(f"video_model {folder}: no readable model_index.json") from None
    class_name = str(index.get("_class_name", ""))
    if class_name in _WAN_CLASSES:
        encoder = index.get("image_encoder") or [None, None]
        return WAN_21 if encoder[0] is not None else WAN_22_TI2V
    if class_name in _BY_CLASS:
        return _BY_CLASS[class_name]
    known = ", ".join(sorted({*_BY_CLASS, *_WAN_CLASSES}))
    raise ConfigurationError(
        f"video_model {folder}: {class_name or 'an unnamed pipeline'} is not an image-to-video "
        f"pipeline this backend animates with ({known})"
    )
