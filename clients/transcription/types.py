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


LanguageOdds = tuple[tuple[str, float], ...]
"""Whisper's language detection: (code, probability), most probable first."""


@dataclass(frozen=True)
class DecodeBounds:
    """How much one reading may cost: the temperatures Whisper falls back through when a
    reading fails its own tests (compression ratio, log probability), and the most tokens
    a window may produce (None: Whisper's own limit)."""

    temperatures: tuple[float, ...] = (0.0,)
    max_new_tokens: int | None = None


WHISPER_DEFAULTS = DecodeBounds()
"""One greedy or beam reading, no fallback, up to Whisper's own token limit."""


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
        bounds: DecodeBounds = WHISPER_DEFAULTS,
    ) -> RawTranscription: ...

    def detect_language(
        self, audio: np.ndarray[Any, np.dtype[np.float32]]
    ) -> tuple[str, float]: ...

    def language_odds(self, audio: np.ndarray[Any, np.dtype[np.float32]]) -> LanguageOdds:
        """Every language's probability for the first 30 s of `audio`, most probable first."""
        ...


@dataclass(frozen=True)
class EngineKind:
    """How to place and load one Whisper implementation."""

    name: str
    device_for: Callable[[TranscriptionSettings], tuple[str, str]]
    """(device, compute type) for these settings on this machine."""
    create: Callable[[TranscriptionSettings, Path, str, str], TranscriptionEngine]
    """Load the engine: settings, models folder, device, compute type."""
