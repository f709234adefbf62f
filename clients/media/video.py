"""The one H.264 encoder every video writer uses: generated clips and assembled scenes.

Frames are numbers in, an MP4 (H.264, yuv420p, no audio) out, written by moviepy through the
ffmpeg shipped inside imageio-ffmpeg. `VideoEncoding.bit_exact` makes the bytes a function of
the frames alone (one encoder thread, no version tags), which the offline backends need so that
the same request always gives the same clip.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from moviepy import VideoClip
from PIL import Image

from clients.media.drawing import cover

Frame = np.ndarray[Any, np.dtype[np.uint8]]
"""One RGB24 frame, height x width x 3."""


@dataclass(frozen=True)
class VideoEncoding:
    preset: str = "veryfast"
    crf: int = 20
    bit_exact: bool = False


CLIP_ENCODING = VideoEncoding(preset="veryfast", crf=20, bit_exact=True)
"""How the offline backends encode their clips: the same request always gives the same bytes."""


def write_video(
    frame_at: Callable[[float], Frame],
    frame_count: int,
    fps: float,
    output: Path,
    encoding: VideoEncoding,
) -> None:
    """Encode exactly `frame_count` frames, `frame_at(t)` for t = 0, 1/fps, ..., into `output`."""
    # moviepy writes int(duration * fps) frames: half a frame more keeps float error from
    # dropping the last one.
    clip = VideoClip(frame_function=frame_at, duration=(frame_count + 0.5) / fps)
    parameters = ["-crf", str(encoding.crf), "-movflags", "+faststart"]
    if encoding.bit_exact:
        parameters += ["-bitexact"]
    try:
        clip.write_videofile(
            str(output),
            fps=fps,
            codec="libx264",
            audio=False,
            preset=encoding.preset,
            pixel_format="yuv420p",
            threads=1 if encoding.bit_exact else None,
            ffmpeg_params=parameters,
            logger=None,
        )
    finally:
        clip.close()


def encode_frames(frames: Sequence[Frame], fps: float, encoding: VideoEncoding) -> bytes:
    """`frames`, one after another at `fps`, as the bytes of an MP4."""
    with tempfile.TemporaryDirectory(prefix="storyboard-clip-") as folder:
        output = Path(folder) / "clip.mp4"

        def frame_at(t: float) -> Frame:
            return frames[min(len(frames) - 1, round(t * fps))]

        write_video(frame_at, len(frames), fps, output, encoding)
        return output.read_bytes()


def push_in_frames(
    image: Image.Image, seed: int, frames: int, width: int, height: int
) -> list[Frame]:
    """A slow push-in from the top edge with a slight sideways drift over a still.

    Anchoring at the top keeps a panel's header (label and prompt) in view throughout.
    """
    rng = random.Random(seed ^ 0x5EED)
    source = cover(image.convert("RGB"), width, height)
    end_zoom = 1.06
    drift = rng.uniform(-0.3, 0.3)
    out: list[Frame] = []
    for index in range(frames):
        t = index / max(1, frames - 1)
        eased = t * t * (3 - 2 * t)
        zoom = 1 + (end_zoom - 1) * eased
        crop_w, crop_h = width / zoom, height / zoom
        left = (width - crop_w) * (0.5 + drift * eased)
        frame = source.resize(
            (width, height), Image.Resampling.BILINEAR, box=(left, 0, left + crop_w, crop_h)
        )
        out.append(np.asarray(frame))
    return out


def clip_shape(path: Path) -> tuple[int, float] | None:
    """(frames, fps) of a clip, from its container; None when it cannot be read."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or 0.0)
            if stream.frames:
                return stream.frames, rate
            return sum(1 for packet in container.demux(stream) if packet.size), rate
    except (OSError, IndexError, av.FFmpegError):
        return None
