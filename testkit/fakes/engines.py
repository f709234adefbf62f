"""Transcription engines for tests: the real engine, remembering what it has answered."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from clients.transcription.types import TranscriptionEngine


class RememberingEngine:
    """The real engine, answering a call it has answered before (the same audio and options;
    a detection of the same audio) from memory: reading a scene alone, packed mode's fallback
    and the one-by-one reference are the same Whisper call, and Whisper is deterministic."""

    def __init__(self, engine: TranscriptionEngine) -> None:
        self.engine = engine
        self.name, self.model_name = engine.name, engine.model_name
        self.device, self.compute_type = engine.device, engine.compute_type
        self.answers: dict[tuple[object, ...], Any] = {}

    def transcribe(self, audio: Any, **options: Any) -> Any:
        key = (hashlib.sha256(audio.tobytes()).hexdigest(), *sorted(options.items()))
        if key not in self.answers:
            self.answers[key] = self.engine.transcribe(audio, **options)
        return self.answers[key]

    def detect_language(self, audio: Any) -> tuple[str, float]:
        return self.engine.detect_language(audio)

    def language_odds(self, audio: Any) -> Any:
        key = ("odds", hashlib.sha256(audio.tobytes()).hexdigest())
        if key not in self.answers:
            self.answers[key] = self.engine.language_odds(audio)
        return self.answers[key]


class DoubtfulEngine(RememberingEngine):
    """The real engine's words, with Whisper's no-speech guess as another processor may make
    it for a marginal recording: sure there is no speech (0.95) and unsure of its words
    (-1.2), the side of both thresholds that calls a scene silent."""

    def transcribe(self, audio: Any, **options: Any) -> Any:
        raw = super().transcribe(audio, **options)
        doubtful = tuple(
            replace(segment, no_speech_prob=0.95, avg_logprob=-1.2) for segment in raw.segments
        )
        return replace(raw, segments=doubtful)
