"""Frames in the encoder's own 4:2:0 planes (`clients/media/yuv.py`): the same colours as
ffmpeg's conversion, paint that blends like compositing in RGB, and a clip's planes through to
the encoder untouched."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from clients.media.video import VideoEncoding, write_planes
from clients.media.yuv import YuvFrame, decoded_yuv, rgb_to_yuv, yuv_paint
from domain.errors import FfmpegError


def _picture(width: int = 96, height: int = 64, seed: int = 7, squares: int = 4) -> np.ndarray:
    """Smooth colour gradients with a few hard-edged squares: what scenes look like."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width]
    picture = np.stack(
        [columns * 255 // width, rows * 255 // height, (rows + columns) * 127 // (width + height)],
        axis=-1,
    ).astype(np.uint8)
    for _ in range(squares):
        top, left = int(rng.integers(0, height - 8)), int(rng.integers(0, width - 8))
        picture[top : top + 8, left : left + 8] = rng.integers(0, 256, 3)
    return picture


def _swscale(rgb: np.ndarray) -> YuvFrame:
    """ffmpeg's own conversion of `rgb` to 4:2:0, through PyAV."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    return decoded_yuv(frame)


def test_rgb_converts_to_the_planes_ffmpeg_makes() -> None:
    """The same matrix and range as ffmpeg's: a flat colour exactly, a picture within a level
    (chroma within three at hard edges, where the two average a block differently)."""
    flat = np.full((64, 96, 3), (200, 40, 90), np.uint8)
    for ours, ffmpegs in zip(rgb_to_yuv(flat).planes(), _swscale(flat).planes(), strict=True):
        assert np.array_equal(ours, ffmpegs)
    rgb = _picture()
    ours_planes, ffmpegs_planes = rgb_to_yuv(rgb).planes(), _swscale(rgb).planes()
    for ours, ffmpegs, most in zip(ours_planes, ffmpegs_planes, (1, 3, 3), strict=True):
        difference = np.abs(ours.astype(int) - ffmpegs)
        assert difference.max() <= most and difference.mean() < 0.2


def test_paint_blends_like_compositing_in_rgb() -> None:
    """Over a smooth picture (a chroma sample is its block's mean, so how much of a colour
    edge inside a block shows under an antialiased letter is not kept)."""
    base = _picture(squares=0)
    rng = np.random.default_rng(3)
    layer = np.zeros((64, 96, 4), np.uint8)
    layer[40:60, 4:90] = (0, 0, 0, 140)  # a caption band
    layer[44:56, 10:80, :3] = rng.integers(200, 256, (12, 70, 3))  # its white-ish text
    layer[44:56, 10:80, 3] = rng.integers(0, 256, (12, 70))  # antialiased edges
    composited = Image.alpha_composite(
        Image.fromarray(base).convert("RGBA"), Image.fromarray(layer)
    ).convert("RGB")
    expected = rgb_to_yuv(np.asarray(composited))

    frame = rgb_to_yuv(base)
    planes = [plane.copy() for plane in frame.planes()]
    yuv_paint(layer[40:60, 4:90]).blend_into(planes, left=4, top=40)

    # luma per pixel, as RGB would; a chroma sample from its block's mean cover, which
    # differs from the mean of four composited pixels only where the cover changes within
    # the block (antialiased edges) and then by a few levels
    for ours, theirs, most in zip(planes, expected.planes(), (1, 3, 3), strict=True):
        difference = np.abs(ours.astype(int) - theirs)
        assert difference.max() <= most and difference.mean() < 0.5
    assert np.array_equal(planes[0][:40], frame.y[:40]), "nothing changes outside the paint"


def test_a_clips_planes_reach_the_encoder_untouched(tmp_path: Path) -> None:
    frames = [rgb_to_yuv(_picture(seed=seed)) for seed in range(5)]
    clip = tmp_path / "clip.mp4"
    lossless = VideoEncoding(preset="veryfast", crf=0)
    write_planes((frame.planes() for frame in frames), (96, 64), 6, clip, lossless)

    with av.open(str(clip)) as container:
        decoded = [decoded_yuv(frame) for frame in container.decode(container.streams.video[0])]
    assert len(decoded) == len(frames)
    for written, read in zip(frames, decoded, strict=True):
        assert all(
            np.array_equal(a, b) for a, b in zip(written.planes(), read.planes(), strict=True)
        )


def test_a_failed_encode_is_one_line(tmp_path: Path) -> None:
    frame = rgb_to_yuv(_picture())
    with pytest.raises(FfmpegError, match="ffmpeg failed"):
        write_planes([frame.planes()], (96, 64), 6, tmp_path / "missing" / "x.mp4", VideoEncoding())
