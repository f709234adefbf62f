"""Audio: checking and decoding recordings with PyAV, to mono float samples."""

from __future__ import annotations

import wave
from itertools import chain
from pathlib import Path

import av
import numpy as np

from domain.errors import AudioError
from domain.media import FloatAudio

MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
MAX_SAMPLES_PER_S = 384_000
"""8 channels at 48 kHz, 4 at 96 kHz or 2 at 192 kHz: the most a narration is decoded from."""


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


def narration_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    """The container's audio stream, once its shape is one a narration can have: decoding is
    paid per channel and per sample, so a file of many channels at an extreme rate (a 12-MB
    FLAC of 8 channels at 384 kHz took two minutes of CPU) is refused before it is decoded."""
    if not container.streams.audio:
        raise AudioError("the file holds no audio stream")
    stream = container.streams.audio[0]
    rate, channels = stream.codec_context.sample_rate or 0, stream.codec_context.channels or 0
    if rate > MAX_SAMPLE_RATE or channels > MAX_CHANNELS or rate * channels > MAX_SAMPLES_PER_S:
        raise AudioError(
            f"{channels} channels at {rate} Hz is not a narration: at most {MAX_CHANNELS} "
            f"channels, {MAX_SAMPLE_RATE} Hz and {MAX_SAMPLES_PER_S} samples a second in all"
        )
    return stream


def check_audio(path: Path) -> None:
    """Raise AudioError (one line) unless `path` holds audio whose first frame decodes."""
    if path.stat().st_size == 0:
        raise AudioError("the file is empty (0 bytes)")
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if next(container.decode(narration_stream(container)), None) is None:
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
            stream = narration_stream(container)
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
