"""A scene read in its own language, from its own evidence (`tasks/language.py`'s rule).

Whisper reads the scene once without being told its language: that pass detects the language
on the encoder output it decodes, so the detection costs no pass of its own. When the scene's
most probable language is the storyboard's, that reading is the scene's. Otherwise the
candidates are read (the first reading already is one of them when it is the most probable),
and the storyboard language's reading is made only when the rule has to compare with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from clients.transcription.types import TranscriptionEngine
from configs.settings import TranscriptionSettings
from tasks.invented import mean_logprob
from tasks.language import (
    OTHER_LANGUAGE_LOGPROB,
    OTHER_LANGUAGE_SURE,
    LanguageChoice,
    SceneLanguage,
    scene_evidence,
)
from tasks.packing import Audio, SpeechClip
from tasks.reading import WHISPER_SAMPLE_RATE, Reading, read_audio


@dataclass(frozen=True)
class SceneAudio:
    """One recording's audio and the speech the VAD heard in it."""

    audio: Audio
    clip: SpeechClip
    speech_s: float | None


def read_in_own_language(
    engine: TranscriptionEngine,
    scene: SceneAudio,
    settings: TranscriptionSettings,
    storyboard: LanguageChoice,
) -> Reading:
    """The scene's reading in the language its own evidence gives it, with what its
    detection measured for that language."""
    readings: dict[str | None, Reading] = {}

    def reading_in(language: str | None) -> Reading:
        if language not in readings:
            readings[language] = read_audio(
                engine, scene.audio, settings, language, speech_s=scene.speech_s
            )
        return readings[language]

    first = reading_in(None)
    own = scene_evidence(first.raw.odds, storyboard)
    readings[first.raw.language] = first
    if own.code is None or own.code == first.raw.language:
        return replace(first, probability=own.probability(first.raw.language))
    best = _best_other_reading(own, reading_in, len(scene.audio) / WHISPER_SAMPLE_RATE)
    if best is not None and (best[1].probability or 0.0) >= OTHER_LANGUAGE_SURE:
        return best[1]
    in_storyboard = replace(reading_in(own.code), probability=own.probability(own.code))
    if best is None:
        return in_storyboard
    logprob = mean_logprob(in_storyboard.raw.segments)
    invented = in_storyboard.invented(len(scene.audio) / WHISPER_SAMPLE_RATE)
    return best[1] if logprob is None or invented or best[0] > logprob else in_storyboard


def _best_other_reading(
    own: SceneLanguage, reading_in: Callable[[str], Reading], audio_s: float
) -> tuple[float, Reading] | None:
    """The best reading in one of the scene's candidate languages that stands Whisper's
    tests (sure of its words, nothing invented), with its mean log probability."""
    kept: list[tuple[float, Reading]] = []
    for language in own.candidates:
        reading = reading_in(language)
        logprob = mean_logprob(reading.raw.segments)
        if logprob is None or logprob < OTHER_LANGUAGE_LOGPROB or not reading.segments:
            continue
        if reading.invented(audio_s) is None:
            kept.append((logprob, replace(reading, probability=own.probability(language))))
    return max(kept, key=lambda item: item[0]) if kept else None
