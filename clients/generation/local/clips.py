"""A scene's motion clip from a local image-to-video pipeline: what to ask the family for
(`plan_clip`: frames, fps, size, steps, guidance, motion prompt), and the call itself, clip
after clip continued from the last frame when the scene is longer than one clip can be."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from clients.generation.local.video_families import VideoFamily
from configs.settings import LocalGenerationSettings
from domain.media import ClipRequest


@dataclass(frozen=True)
class ClipPlan:
    """What one scene's clip is made of: `clips` calls of `frames` frames each, the later ones
    continued from the last frame of the one before (their first frame is that frame)."""

    family: str
    frames: int
    clips: int
    fps: int
    width: int
    height: int
    steps: int
    guidance: float
    prompt: str
    negative_prompt: str

    def fingerprint(self) -> dict[str, Any]:
        return asdict(self)


def clip_length(family: VideoFamily, settings: LocalGenerationSettings) -> str:
    if settings.clip_length is not None:
        return settings.clip_length
    return "narration" if family.takes_text else "fixed"


def plan_frames(
    family: VideoFamily, request: ClipRequest, settings: LocalGenerationSettings, fps: int
) -> tuple[int, int]:
    """(frames per clip, clips) for the scene: its own `frames:`, else as long as its
    narration (`clip_length: narration`), else `frames` or the family's own."""
    if request.frames is not None:
        return family.accepted_frames(request.frames), 1
    if clip_length(family, settings) == "narration" and request.span_s > 0:
        wanted = max(2, math.ceil(request.span_s * fps - 1e-6))
        if wanted <= family.max_frames:
            return family.frames_for(request.span_s, fps), 1
        clips = min(settings.max_clips_per_scene, math.ceil((wanted - 1) / (family.max_frames - 1)))
        each = math.ceil((wanted - 1) / clips) + 1
        return family.accepted_frames(each, at_least=True), clips
    return family.accepted_frames(settings.frames or family.default_frames), 1


def plan_clip(
    family: VideoFamily, request: ClipRequest, settings: LocalGenerationSettings
) -> ClipPlan:
    fps = request.fps or settings.fps or family.fps
    frames, clips = plan_frames(family, request, settings, fps)
    width, height = family.accepted_size(settings.clip_width, settings.clip_height)
    if family.takes_text:
        guidance = first_set(
            settings.video_lora_guidance if settings.video_lora else None,
            settings.clip_guidance_scale,
            family.guidance,
        )
    else:
        guidance = max(1.0, request.cfg_scale)
    lora_steps = settings.video_lora_steps if settings.video_lora and family.takes_text else None
    return ClipPlan(
        family=family.name,
        frames=frames,
        clips=clips,
        fps=fps,
        width=width,
        height=height,
        steps=lora_steps or settings.clip_steps or family.steps,
        guidance=guidance,
        prompt=request.prompt if family.takes_text else "",
        negative_prompt=request.negative_prompt if family.takes_text else "",
    )


def first_set(*values: float | None) -> float:
    """The first of `values` that is set (the last is always)."""
    return next(value for value in values if value is not None)


def svd_options(
    plan: ClipPlan, request: ClipRequest, settings: LocalGenerationSettings
) -> dict[str, Any]:
    """SVD's call options: also its cache fingerprint, as it has always been."""
    return {
        "num_frames": plan.frames,
        "fps": plan.fps,
        "motion_bucket_id": request.motion_bucket_id,
        "noise_aug_strength": (
            settings.noise_aug_strength
            if request.noise_aug_strength is None
            else request.noise_aug_strength
        ),
        "width": plan.width,
        "height": plan.height,
        "max_guidance_scale": plan.guidance,
        "num_inference_steps": plan.steps,
    }


def text_steered_options(plan: ClipPlan, family: VideoFamily) -> dict[str, Any]:
    options: dict[str, Any] = {
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "num_frames": plan.frames,
        "width": plan.width,
        "height": plan.height,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance,
        "output_type": "np",
    }
    if family.frame_rate_option:
        options["frame_rate"] = plan.fps
    return options


Frames = list[np.ndarray[Any, np.dtype[np.uint8]]]


def as_frames(frames: Any) -> Frames:
    """A pipeline's frames (PIL images, or floats in [0, 1]) as RGB bytes."""
    if isinstance(frames, np.ndarray) and frames.dtype != np.uint8:
        scaled = (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        return [frame[..., :3] for frame in scaled]
    return [
        np.asarray(frame.convert("RGB")) if hasattr(frame, "convert") else frame for frame in frames
    ]


def continued_clips(first: Image.Image, plan: ClipPlan, call: Any, seed: int) -> Frames:
    """`plan.clips` clips, each from the last frame of the one before, as one run of frames:
    `call(still, seed)` makes one clip's frames."""
    frames: Frames = []
    still = first
    for index in range(plan.clips):
        made = as_frames(call(still, seed + index))
        frames.extend(made if index == 0 else made[1:])
        still = Image.fromarray(made[-1])
    return frames
