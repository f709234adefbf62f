"""Audio decoding (PyAV) and the ffmpeg executable shipped inside imageio-ffmpeg.

ffmpeg is always run with an argument list, never through a shell, so a file name can never
become a command.
"""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any

import av
import numpy as np

from clients.errors import AudioError, StoryboardError

FloatAudio = np.ndarray[Any, np.dtype[np.float32]]


class FfmpegError(StoryboardError):
    """ffmpeg exited with an error."""


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _declared_wav_seconds(path: Path) -> float | None:
    """What a PCM WAV header says the recording lasts (the data chunk's size), if it is one."""
    try:
        with wave.open(str(path), "rb") as header:
            frames, rate = header.getnframes(), header.getframerate()
    except (wave.Error, EOFError, OSError):
        return None
    if rate <= 0 or frames <= 0 or frames >= 0xFFFFFFF0 // 2:  # streaming writers leave it open
        return None
    return frames / rate


def declared_seconds(path: Path) -> float | None:
    """How long the file says it is, from its header, without decoding it."""
    if path.suffix.lower() == ".wav" and (seconds := _declared_wav_seconds(path)) is not None:
        return seconds
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            return container.duration / av.time_base if container.duration else None
    except (av.error.FFmpegError, ValueError, OSError):
        return None


def check_audio(path: Path) -> None:
    """Raise AudioError (one line) unless `path` holds audio whose first frame decodes."""
    if path.stat().st_size == 0:
        raise AudioError("the file is empty (0 bytes)")
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("the file holds no audio stream")
            if next(container.decode(container.streams.audio[0]), None) is None:
                raise AudioError("the file decodes to no audio")
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"not a readable audio file ({reason})") from None


def decode_audio(path: Path, sample_rate: int, max_seconds: float | None = None) -> FloatAudio:
    """The whole recording as mono float32 samples at `sample_rate`.

    Raises AudioError with a one-line reason for empty, truncated (shorter than its header
    declares) or non-audio files, and for recordings longer than `max_seconds`, which are
    refused before they are decoded.
    """
    if path.stat().st_size == 0:
        raise AudioError("the recording is empty (0 bytes)")
    declared = declared_seconds(path)

    def too_long(seconds: float) -> AudioError:
        assert max_seconds is not None
        return AudioError(
            f"the recording is {_clock(seconds)} long; a scene's narration may be at most "
            f"{_clock(max_seconds)} (transcription.max_recording_s)"
        )

    if max_seconds is not None and declared is not None and declared > max_seconds:
        raise too_long(declared)
    limit = None if max_seconds is None else round(max_seconds * sample_rate)
    chunks: list[FloatAudio] = []
    decoded = 0
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("the file holds no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in chain(container.decode(stream), [None]):
                for resampled in resampler.resample(frame):
                    chunks.append(resampled.to_ndarray().reshape(-1).astype(np.float32))
                    decoded += len(chunks[-1])
                if limit is not None and decoded > limit:
                    raise too_long(decoded / sample_rate)
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"not a readable audio file ({reason})") from None
    if not chunks:
        raise AudioError("the recording decodes to no audio samples")
    seconds = decoded / sample_rate
    if declared is not None and seconds < 0.9 * declared - 0.1:
        raise AudioError(
            f"the recording is truncated: it decodes to {seconds:.1f} s of the {declared:.1f} s "
            "its header declares (an unfinished upload or copy?)"
        )
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
