"""The one H.264 encoder every video writer uses: generated clips and assembled scenes.

Frames are numbers in, an MP4 (H.264, yuv420p, no audio) out, through the ffmpeg shipped
inside imageio-ffmpeg, with one set of encoder options: RGB frames written by moviepy
(`write_video`: clips), or frames already in the encoder's 4:2:0 planes piped straight in
(`write_planes`: the assembly's scenes, `clients/media/yuv.py`), which spares ffmpeg a colour
conversion per frame. `VideoEncoding.bit_exact` makes the bytes a function of the frames alone
(one encoder thread, no version tags), which the offline backends need so that the same request
always gives the same clip.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from moviepy import VideoClip
from PIL import Image

from clients.media.drawing import cover
from clients.media.ffmpeg import ffmpeg_executable, ffmpeg_failure

Frame = np.ndarray[Any, np.dtype[np.uint8]]
"""One RGB24 frame, height x width x 3."""
Plane = np.ndarray[Any, np.dtype[np.uint8]]
"""One plane of a frame (Y, U or V), height x width."""


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
    try:
        clip.write_videofile(
            str(output),
            fps=fps,
            codec="libx264",
            audio=False,
            preset=encoding.preset,
            pixel_format="yuv420p",
            threads=1 if encoding.bit_exact else None,
            ffmpeg_params=_x264_parameters(encoding),
            logger=None,
        )
    finally:
        clip.close()


def write_planes(
    frames: Iterable[Sequence[Plane]],
    size: tuple[int, int],
    fps: float,
    output: Path,
    encoding: VideoEncoding,
) -> None:
    """Encode `frames`, each its Y, U and V planes (4:2:0, `size` = (width, height)), into
    `output` with the same encoder and options as `write_video`, and no colour conversion."""
    width, height = size
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    command += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}"]
    command += ["-r", f"{fps:g}", "-i", "-", "-an", *_x264_options(encoding), str(output)]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=errors)  # noqa: S603
        stdin = process.stdin
        assert stdin is not None
        try:
            for planes in frames:
                for plane in planes:
                    stdin.write(np.ascontiguousarray(plane).data)
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its own error says why, below
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()
            returncode = process.wait()
        if returncode != 0:
            errors.seek(0)
            raise ffmpeg_failure(returncode, errors.read().decode(errors="replace"))


def _x264_options(encoding: VideoEncoding) -> list[str]:
    """The H.264 encoder and every option of it (what moviepy adds itself, then the rest)."""
    options = ["-c:v", "libx264", "-preset", encoding.preset, "-pix_fmt", "yuv420p"]
    if encoding.bit_exact:
        options += ["-threads", "1"]
    return [*options, *_x264_parameters(encoding)]


def _x264_parameters(encoding: VideoEncoding) -> list[str]:
    parameters = ["-crf", str(encoding.crf), "-movflags", "+faststart"]
    if encoding.bit_exact:
        parameters += ["-bitexact"]
    return parameters


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
