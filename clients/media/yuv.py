"""Frames as the encoder takes them: YUV 4:2:0 planes (BT.601, limited range, the matrix an
untagged H.264 stream is read with).

A clip's decoded frames are already in this form, so a scene made of them reaches the
encoder without a colour conversion either way; a still or a card is converted once, and
what is drawn over a frame is blended into the planes where it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from clients.media.video import Frame, Plane

Float = np.ndarray[Any, np.dtype[np.float32]]

PASSED_THROUGH_COLORSPACES = (2, 5, 6)
"""AVColorSpace values read as BT.601: unspecified, BT.470BG, SMPTE 170M."""
PASSED_THROUGH_RANGES = (0, 1)
"""AVColorRange values read as limited: unspecified, MPEG."""


@dataclass(frozen=True)
class YuvFrame:
    """One frame's planes: luma at full size, the two chroma planes at half size each way."""

    y: Plane
    u: Plane
    v: Plane

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.y.shape[1], self.y.shape[0]

    def planes(self) -> tuple[Plane, Plane, Plane]:
        return self.y, self.u, self.v

    def blend(self, other: YuvFrame, alpha: float) -> YuvFrame:
        """This frame dissolving into `other`, `alpha` of the way."""
        mixed = (
            (mine * np.float32(1.0 - alpha) + theirs * np.float32(alpha) + 0.5).astype(np.uint8)
            for mine, theirs in zip(self.planes(), other.planes(), strict=True)
        )
        return YuvFrame(*mixed)


def rgb_to_yuv(rgb: Frame) -> YuvFrame:
    """An RGB frame (even width and height) as 4:2:0 planes; chroma from each 2x2 block's
    mean colour."""
    y, u, v = _yuv_of(rgb.astype(np.float32))
    return YuvFrame(_bytes(y), _bytes(_block_mean(u)), _bytes(_block_mean(v)))


@dataclass(frozen=True)
class YuvPaint:
    """Something drawn over frames (a label, a caption), ready to blend into their planes:
    per plane, what it adds and the share of the frame it keeps."""

    added: tuple[Float, Float, Float]
    kept: tuple[Float, Float, Float]

    def blend_into(self, planes: Sequence[Plane], left: int, top: int) -> None:
        """Blend this paint into `planes` (a frame's, changed in place) at (left, top), both
        even."""
        paint = zip(planes, self.added, self.kept, strict=True)
        for index, (plane, added, kept) in enumerate(paint):
            step = 1 if index == 0 else 2
            rows, columns = added.shape
            region = plane[top // step : top // step + rows, left // step : left // step + columns]
            region[...] = (region * kept + added + 0.5).astype(np.uint8)


def yuv_paint(rgba: np.ndarray[Any, np.dtype[np.uint8]]) -> YuvPaint:
    """A drawn RGBA picture (even width and height) as paint: each chroma sample takes the
    colour its four pixels are painted with, weighted by how much each is covered. Luma is
    what compositing in RGB gives; chroma too where a block is covered evenly, and within a
    few levels where an antialiased edge crosses a colour edge of the frame in one block."""
    colour, alpha = rgba[..., :3].astype(np.float32), rgba[..., 3].astype(np.float32) / 255.0
    y, u, v = _yuv_of(colour)
    alpha_c = _block_mean(alpha)
    added = (y * alpha, _block_mean(u * alpha), _block_mean(v * alpha))
    kept = (1.0 - alpha, 1.0 - alpha_c, 1.0 - alpha_c)
    return YuvPaint(added, kept)


def decoded_yuv(frame: av.VideoFrame) -> YuvFrame:
    """A decoded video frame's planes as they are when it is plain BT.601 4:2:0, else
    through RGB."""
    plain = (
        frame.format.name == "yuv420p"
        and frame.colorspace in PASSED_THROUGH_COLORSPACES
        and frame.color_range in PASSED_THROUGH_RANGES
        and frame.width % 2 == 0
        and frame.height % 2 == 0
    )
    if not plain:
        return rgb_to_yuv(frame.to_ndarray(format="rgb24").astype(np.uint8, copy=False))
    planes = []
    for plane in frame.planes:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        planes.append(rows[:, : plane.width].copy())
    return YuvFrame(*planes)


def _yuv_of(colour: Float) -> tuple[Float, Float, Float]:
    r, g, b = colour[..., 0], colour[..., 1], colour[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return y, u, v


def _block_mean(plane: Float) -> Float:
    height, width = plane.shape
    blocks = plane.reshape(height // 2, 2, width // 2, 2)
    mean: Float = blocks.mean(axis=(1, 3), dtype=np.float32)
    return mean


def _bytes(values: np.ndarray[Any, Any]) -> Plane:
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)
