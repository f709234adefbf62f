"""Transcription engines for tests: the real engine, remembering what it has answered."""

from __future__ import annotations

import hashlib
from typing import Any

from clients.transcription.types import TranscriptionEngine


class RememberingEngine:
    """The real engine, answering a call it has answered before (the same audio and options)
    from memory: reading a scene alone, packed mode's fallback and the one-by-one reference
    are the same Whisper call, and Whisper is deterministic."""

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
