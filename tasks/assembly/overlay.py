"""What a scene shows: its source frames (clip, still or placeholder card) and the label and
caption drawn over them.

Frames are the encoder's own 4:2:0 planes (`clients/media/yuv.py`): a clip's decoded frames go
to the encoder as they are. Overlays are drawn once per scene and caption, and blended into the
clip's few source frames rather than into every output frame, only where they are drawn; a
still gets a slow Ken Burns push-in instead.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from clients.media.drawing import (
    cover,
    draw_lines,
    fit_text,
    font,
    line_height,
    placeholder_card,
    text_width,
)
from clients.media.yuv import YuvFrame, YuvPaint, decoded_yuv, rgb_to_yuv, yuv_paint
from configs.settings import AssemblySettings
from domain.errors import AudioError
from domain.media import SVD_HEIGHT, SVD_WIDTH
from tasks.assembly.timeline import SceneCut, active_caption


def read_clip_frames(path: Path, width: int, height: int) -> tuple[list[YuvFrame], float]:
    """Every frame of a short clip, at the output size, and the clip's frame rate."""
    frames: list[YuvFrame] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 6)
        for frame in container.decode(stream):
            if (frame.width, frame.height) == (width, height):
                frames.append(decoded_yuv(frame))
            else:
                image = frame.to_image()  # type: ignore[no-untyped-call]
                frames.append(rgb_to_yuv(np.asarray(cover(image, width, height))))
    if not frames:
        raise AudioError(f"{path.name}: the clip has no frames")
    return frames, fps


def _draw_label(draw: ImageDraw.ImageDraw, label: str, width: int, height: int) -> None:
    """The scene's label, white on a dark box, in the top right corner."""
    margin = max(8, width // 40)
    label_font = font(max(12, height // 30), bold=True)
    box = (
        width - margin * 2 - text_width(label, label_font),
        margin,
        width - margin,
        margin + line_height(label_font) + margin // 2,
    )
    draw.rectangle(box, fill=(0, 0, 0, 150))
    draw.text((box[0] + margin / 2, box[1] + margin / 4), label, font=label_font, fill="white")


def _draw_caption(draw: ImageDraw.ImageDraw, caption: str, width: int, height: int) -> None:
    """Up to three centred lines of caption on a dark band along the bottom edge."""
    margin = max(8, width // 40)
    caption_font, lines = fit_text(
        caption, width - 4 * margin, 3, (height // 18, height // 22, height // 28)
    )
    block = line_height(caption_font) * len(lines)
    top = height - block - margin * 2
    draw.rectangle((0, top - margin / 2, width, height), fill=(0, 0, 0, 140))
    draw_lines(
        draw=draw,
        lines=lines,
        typeface=caption_font,
        x=2 * margin,
        y=top,
        fill=(255, 255, 255),
        centre_width=width - 4 * margin,
        stroke=(0, 0, 0),
    )


@functools.lru_cache(maxsize=32)
def _overlay_layer(
    size: tuple[int, int], label: str | None, caption: str | None
) -> tuple[tuple[int, int, YuvPaint], ...]:
    """The label and caption drawn once, for every frame they cover, as paint for each box
    of the layer that is drawn on (a band of rows each, widened to even bounds), with the
    box's top left corner."""
    width, height = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if label:
        _draw_label(draw, label, width, height)
    if caption:
        _draw_caption(draw, caption, width, height)
    drawn = np.asarray(layer)
    pieces = []
    for box in _drawn_boxes(layer):
        left, top, right, bottom = _even(box)
        pieces.append((left, top, yuv_paint(drawn[top:bottom, left:right])))
    return tuple(pieces)


def _even(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """`box` widened to even bounds (a frame's width and height are even), so that it covers
    whole chroma samples."""
    left, top, right, bottom = box
    return left - left % 2, top - top % 2, right + right % 2, bottom + bottom % 2


def _drawn_boxes(layer: Image.Image) -> tuple[tuple[int, int, int, int], ...]:
    """Each run of rows where `layer` is drawn on, with the columns drawn on in it."""
    alpha = np.asarray(layer.getchannel("A")) > 0
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return ()
    breaks = np.flatnonzero(np.diff(rows) > 1)
    boxes = []
    for first, last in zip(
        np.concatenate(([rows[0]], rows[breaks + 1])),
        np.concatenate((rows[breaks], [rows[-1]])),
        strict=True,
    ):
        columns = np.flatnonzero(alpha[first : last + 1].any(axis=0))
        boxes.append((int(columns[0]), int(first), int(columns[-1]) + 1, int(last) + 1))
    return tuple(boxes)


def overlay(base: YuvFrame, label: str | None, caption: str | None) -> YuvFrame:
    """`base` with the label and the caption (either may be None) drawn on, blended into its
    planes only where they are drawn."""
    if not label and not caption:
        return base
    planes = [plane.copy() for plane in base.planes()]
    for left, top, paint in _overlay_layer(base.size, label, caption):
        paint.blend_into(planes, left, top)
    return YuvFrame(*planes)


def scene_label(cut: SceneCut, settings: AssemblySettings) -> str | None:
    """The label drawn over a scene: only over a generated clip, and only when asked for."""
    drawn = settings.scene_labels and cut.clip_path is not None and not cut.picture_labelled
    return cut.label if drawn else None


def first_frame(cut: SceneCut, sources: Sequence[YuvFrame], settings: AssemblySettings) -> YuvFrame:
    """What a scene shows at its first instant, for the previous scene to dissolve into."""
    caption = active_caption(cut.segments, 0.0) if settings.captions else None
    text = cut.segments[caption].text if caption is not None else None
    return overlay(sources[0], scene_label(cut, settings), text)


def ken_burns(still: YuvFrame, progress: float) -> YuvFrame:
    """A slow push-in over a still, `progress` from 0 to 1 (each plane scaled alike)."""
    width, height = still.size
    zoom = 1.0 + 0.12 * progress
    crop_w, crop_h = width / zoom, height / zoom
    left = (width - crop_w) / 2  # toward the top: a panel's header stays whole
    planes = []
    for index, plane in enumerate(still.planes()):
        step = 1 if index == 0 else 2
        box = (left / step, 0.0, (left + crop_w) / step, crop_h / step)
        size = (width // step, height // step)
        scaled = Image.fromarray(plane).resize(size, Image.Resampling.BILINEAR, box=box)
        planes.append(np.asarray(scaled))
    return YuvFrame(*planes)


def differs_from_clip(settings: AssemblySettings) -> bool:
    """Whether the storyboard's frame is far from the motion clip's 16:9 (9:16, 1:1)."""
    return abs(settings.width / settings.height - SVD_WIDTH / SVD_HEIGHT) > 0.15


def scene_sources(cut: SceneCut, settings: AssemblySettings) -> tuple[list[YuvFrame], float]:
    """The frames a scene is made of (its clip's, or one placeholder card) and their rate.

    For a storyboard far from the clip's 16:9, the scene's own image (generated in the
    storyboard's shape) is used instead of a narrow crop of the clip, with a slow push-in.
    """
    if cut.image_path is not None and differs_from_clip(settings):
        with Image.open(cut.image_path) as image:
            still: Image.Image = image.convert("RGB")
        return [rgb_to_yuv(np.asarray(cover(still, settings.width, settings.height)))], 0.0
    if cut.clip_path is not None:
        return read_clip_frames(cut.clip_path, settings.width, settings.height)
    card = placeholder_card(
        settings.width, settings.height, cut.placeholder_heading, cut.placeholder_detail, cut.label
    )
    return [rgb_to_yuv(np.asarray(card))], 1.0
