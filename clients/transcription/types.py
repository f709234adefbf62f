"""What a Whisper engine answers, and what the transcribe stage needs from one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from configs.settings import TranscriptionSettings


@dataclass(frozen=True)
class RawWord:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class RawSegment:
    start_s: float
    end_s: float
    text: str
    no_speech_prob: float
    avg_logprob: float
    words: tuple[RawWord, ...] = ()


@dataclass(frozen=True)
class RawTranscription:
    language: str
    language_probability: float
    segments: tuple[RawSegment, ...]


class TranscriptionEngine(Protocol):
    """What the transcribe stage needs from a Whisper implementation."""

    name: str
    model_name: str
    device: str
    compute_type: str

    def transcribe(
        self,
        audio: np.ndarray[Any, np.dtype[np.float32]],
        *,
        language: str | None,
        task: str,
        beam_size: int,
        vad_filter: bool,
        word_timestamps: bool = False,
    ) -> RawTranscription: ...

    def detect_language(
        self, audio: np.ndarray[Any, np.dtype[np.float32]]
    ) -> tuple[str, float]: ...


@dataclass(frozen=True)
class EngineKind:
    """How to place and load one Whisper implementation."""

    name: str
    device_for: Callable[[TranscriptionSettings], tuple[str, str]]
    """(device, compute type) for these settings on this machine."""
    create: Callable[[TranscriptionSettings, Path, str, str], TranscriptionEngine]
    """Load the engine: settings, models folder, device, compute type."""
