"""The ffmpeg executable shipped inside imageio-ffmpeg, and probing media with PyAV.

ffmpeg is always run with an argument list, never through a shell, so a file name can never
become a command.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import av

from domain.errors import FfmpegError


@cache
def ffmpeg_executable() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@cache
def ffmpeg_version() -> str:
    """The bundled ffmpeg's version (asked once per process: asking runs ffmpeg)."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_version())


def run_ffmpeg(arguments: Sequence[str]) -> None:
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    completed = subprocess.run(  # noqa: S603 - argument list, no shell
        [*command, *arguments], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise ffmpeg_failure(completed.returncode, completed.stderr)


def ffmpeg_failure(returncode: int, stderr: str) -> OSError | FfmpegError:
    """What a failed ffmpeg run is raised as: its last line of error, or a full disk."""
    if "No space left on device" in stderr:
        # the disk, not the media: raised as the operating system says it, like any write
        return OSError(errno.ENOSPC, "No space left on device (ffmpeg)")
    lines = [line for line in stderr.splitlines() if line.strip()]
    reason = lines[-1] if lines else f"exit status {returncode}"
    return FfmpegError(f"ffmpeg failed: {reason}")


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
