"""Audio decoding (PyAV) and the ffmpeg executable shipped inside imageio-ffmpeg.

ffmpeg is always run with an argument list, never through a shell, so a file name can never
become a command.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np

from clients.errors import AudioError, StoryboardError

FloatAudio = np.ndarray[Any, np.dtype[np.float32]]


class FfmpegError(StoryboardError):
    """ffmpeg exited with an error."""


def decode_audio(path: Path, sample_rate: int) -> FloatAudio:
    """The whole recording as mono float32 samples at `sample_rate`.

    Raises AudioError with a one-line reason for empty, truncated or non-audio files.
    """
    if path.stat().st_size == 0:
        raise AudioError("the recording is empty (0 bytes)")
    chunks: list[FloatAudio] = []
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("the file holds no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(stream):
                for resampled in resampler.resample(frame):
                    chunks.append(resampled.to_ndarray().reshape(-1).astype(np.float32))
            for resampled in resampler.resample(None):
                chunks.append(resampled.to_ndarray().reshape(-1).astype(np.float32))
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"not a readable audio file ({reason})") from None
    if not chunks:
        raise AudioError("the recording decodes to no audio samples")
    return np.concatenate(chunks)


@cache
def ffmpeg_executable() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(arguments: Sequence[str]) -> None:
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    completed = subprocess.run(  # noqa: S603 - argument list, no shell
        [*command, *arguments], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {completed.returncode}"
        raise FfmpegError(f"ffmpeg failed: {reason}")


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    video_codec: str | None
    audio_codec: str | None
    width: int
    height: int
    frame_count: int
    fps: float


def probe(path: Path) -> MediaInfo:
    """Codecs, size and duration of a media file, as its container declares them."""
    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = (container.duration or 0) / av.time_base
        return MediaInfo(
            duration_s=float(duration),
            video_codec=video.codec_context.name if video else None,
            audio_codec=audio.codec_context.name if audio else None,
            width=video.codec_context.width if video else 0,
            height=video.codec_context.height if video else 0,
            frame_count=int(video.frames) if video else 0,
            fps=float(video.average_rate) if video and video.average_rate else 0.0,
        )
