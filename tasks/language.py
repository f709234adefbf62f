"""One language per storyboard.

A storyboard is nearly always narrated in one language, and a one-second scene cannot tell
which (Whisper hears Thai in "number 11"). The storyboard's language is detected once, from
its first speech (at least `STORYBOARD_SPEECH_S` of it where there is that much), before any
scene is transcribed, so no scene waits for the whole storyboard. Every scene is then read in
that language, unless it has at least `OWN_LANGUAGE_SPEECH_S` of speech and Whisper is
`OWN_LANGUAGE_PROBABILITY` sure that it is another. `language:` in storyboard.yaml (or
`transcription.language`) overrides both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key
from clients.media.audio import decode_audio
from clients.services import load_engine
from clients.storage import CacheLocation
from clients.transcription.types import TranscriptionEngine
from configs.settings import TranscriptionSettings
from domain.errors import AudioError, StorageError
from domain.scene import Recording
from tasks.ingest import recording_here
from tasks.packing import SAMPLE_RATE, Audio, SpeechClip, speech_clip

STORYBOARD_SPEECH_S = 10.0
OWN_LANGUAGE_SPEECH_S = 5.0
OWN_LANGUAGE_PROBABILITY = 0.9
CACHE_NAMESPACE = "languages"


@dataclass(frozen=True)
class LanguageChoice:
    """The language every scene is read in; `forced` when the user named it."""

    code: str | None
    forced: bool = False


def scene_language(
    engine: TranscriptionEngine, clip: SpeechClip, storyboard: LanguageChoice
) -> str | None:
    """The language to read one scene in: the storyboard's, unless this scene says otherwise
    clearly and at length."""
    if storyboard.forced or storyboard.code is None:
        return storyboard.code
    if clip.duration_s < OWN_LANGUAGE_SPEECH_S:
        return storyboard.code
    language, probability = engine.detect_language(clip.audio)
    return language if probability >= OWN_LANGUAGE_PROBABILITY else storyboard.code


def first_speech(recordings: Sequence[Recording], settings: TranscriptionSettings) -> Audio:
    """The storyboard's first `STORYBOARD_SPEECH_S` of speech (or all of it, when shorter)."""
    pieces: list[Audio] = []
    heard = 0.0
    for recording in recordings:
        if heard >= STORYBOARD_SPEECH_S:
            break
        if recording.problem:
            continue
        try:
            audio = decode_audio(recording_here(recording), SAMPLE_RATE, settings.max_recording_s)
        except (AudioError, StorageError):
            continue
        clip = speech_clip(0, audio)
        if clip.duration_s:
            pieces.append(clip.audio)
            heard += clip.duration_s
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)


def heard_language(
    engine: TranscriptionEngine,
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
) -> tuple[str, float, float] | None:
    """The language of the storyboard's first speech, its probability and the seconds of
    speech it was heard in; None when the storyboard has no speech."""
    speech = first_speech(recordings, settings)
    if not len(speech):
        return None
    language, probability = engine.detect_language(speech)
    return language, probability, len(speech) / SAMPLE_RATE


def storyboard_language(
    engine: TranscriptionEngine,
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
) -> LanguageChoice:
    """The language of the storyboard's first speech (`transcription.language` when set)."""
    if settings.language:
        return LanguageChoice(settings.language, forced=True)
    heard = heard_language(engine, recordings, settings)
    return LanguageChoice(heard[0] if heard else None)


def cached_storyboard_language(
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
    cache: CacheLocation,
    named: str | None,
) -> tuple[LanguageChoice, tuple[str, float, float] | None]:
    """The language the user named, else the one of the storyboard's first speech, cached by
    the storyboard's audio, so an unchanged re-run decodes nothing here; and, when it was
    heard just now, what `heard_language` says of it."""
    if named:
        return LanguageChoice(named, forced=True), None
    store = cache.open()
    key = content_key([r.sha256 for r in recordings], settings.model, STORYBOARD_SPEECH_S)
    known = store.get_json(CACHE_NAMESPACE, key)
    if known is not None and isinstance(known.get("language"), str):
        return LanguageChoice(known["language"]), None
    heard = heard_language(load_engine(settings, cache.local / "models"), recordings, settings)
    if heard is None:
        return LanguageChoice(None), None
    language, probability, _ = heard
    store.put_json(CACHE_NAMESPACE, key, {"language": language, "probability": probability})
    return LanguageChoice(language), heard


@task(name="detect language", cache_policy=NO_CACHE)
def detect_storyboard_language(
    recordings: list[Recording],
    settings: TranscriptionSettings,
    cache: CacheLocation,
    named: str | None,
) -> LanguageChoice:
    choice, heard = cached_storyboard_language(recordings, settings, cache, named)
    if heard is not None:
        get_run_logger().info(
            "storyboard language: %s (probability %.2f, from %.1f s of its first speech)", *heard
        )
    return choice
