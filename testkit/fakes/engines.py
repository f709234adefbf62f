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


class LoopingWhenSampledEngine(RememberingEngine):
    """The real engine, except that a reading allowed to fall back to sampling loops, as a
    sampled reading of a marginal recording can: each word becomes "55 55 55" over its time."""

    def transcribe(self, audio: Any, **options: Any) -> Any:
        raw = super().transcribe(audio, **options)
        if len(options["bounds"].temperatures) < 2:
            return raw
        looped = tuple(
            replace(
                segment,
                text=" 55 55 55" * len(segment.text.split()),
                words=_looped(segment.words),
            )
            for segment in raw.segments
        )
        return replace(raw, segments=looped)


def _looped(words: tuple[Any, ...]) -> tuple[Any, ...]:
    looped = []
    for word in words:
        third = (word.end_s - word.start_s) / 3
        for part in range(3):
            start = word.start_s + part * third
            looped.append(replace(word, start_s=start, end_s=start + third, text=" 55"))
    return tuple(looped)
