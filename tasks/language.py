"""Each scene's language: the storyboard's, unless the scene's own evidence says another.

A storyboard is nearly always narrated in one language, and a one-second scene cannot tell
which alone (Whisper hears Thai in "number 11"). The storyboard's language is detected once,
from its first speech (at least `STORYBOARD_SPEECH_S` of it where there is that much), before
any scene is transcribed, so no scene waits for the whole storyboard. Each scene's speech is
then detected alone: a language Whisper finds at least `OTHER_LANGUAGE_ODDS` times as likely
as the storyboard's (and at least `OTHER_LANGUAGE_MIN_PROBABILITY` likely) is a candidate, and
the scene is read in it only when that reading stands Whisper's own tests (sure of its words,
no loop, nothing invented: `tasks/invented.py`) and, unless the detection is
`OTHER_LANGUAGE_SURE` of it, reads better than the storyboard language's reading (which loops
or invents when the speech is not in that language). Else the scene is read in the
storyboard's language. A scene's `language:` in storyboard.yaml, the storyboard's, or
`transcription.language` decide it instead (in that order). The thresholds were calibrated on
espeak-ng recordings in six languages and three lengths and on real speech (README).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from domain.layout import LANGUAGES, MODELS
from domain.scene import Recording
from tasks.ingest import recording_here
from tasks.packing import SAMPLE_RATE, Audio, SpeechClip, speech_clip

STORYBOARD_SPEECH_S = 10.0
OTHER_LANGUAGE_ODDS = 2.0
OTHER_LANGUAGE_MIN_PROBABILITY = 0.15
OTHER_LANGUAGE_CANDIDATES = 2
OTHER_LANGUAGE_SURE = 0.5
"""A candidate this likely is read in without comparing it to the storyboard language's
reading; a less likely one must read better than that."""
OTHER_LANGUAGE_LOGPROB = -1.0
"""A reading in another language than the storyboard's is kept only when Whisper is at least
this sure of its words (mean token log probability)."""
CACHE_NAMESPACE = LANGUAGES


@dataclass(frozen=True)
class LanguageChoice:
    """The storyboard's language; `forced` when the user named it."""

    code: str | None
    forced: bool = False


@dataclass(frozen=True)
class SceneLanguage:
    """What one scene's own detection says: the storyboard's language (or the one its
    `language:` names), how likely this scene alone finds the languages, and the other
    languages worth a reading."""

    code: str | None
    odds: dict[str, float] = field(default_factory=dict)
    """Empty when the scene was not measured alone (its language was named)."""
    candidates: tuple[str, ...] = ()

    def probability(self, language: str | None) -> float | None:
        """What this scene's own detection measured for `language` (None: not measured)."""
        if not self.odds or language is None:
            return None
        return round(self.odds.get(language, 0.0), 4)


def scene_language(
    engine: TranscriptionEngine,
    clip: SpeechClip,
    storyboard: LanguageChoice,
    named: str | None,
    *,
    heard: Callable[[], Audio],
) -> SceneLanguage:
    """One scene's language evidence: `named` (its own `language:`) or a forced storyboard
    language settle it; else its speech is detected alone, in `heard()`: what its reading
    will hear (`tasks/packing.py:reading_view`), so that the reading reuses the detection's
    encoder pass."""
    if named or storyboard.forced:
        return SceneLanguage(named or storyboard.code)
    if clip.duration_s == 0.0:
        return SceneLanguage(storyboard.code)
    ranked = engine.language_odds(heard())
    odds = dict(ranked)
    if storyboard.code is None:
        return SceneLanguage(ranked[0][0], odds)
    own = odds.get(storyboard.code, 0.0)
    candidates = tuple(
        language
        for language, probability in ranked[: OTHER_LANGUAGE_CANDIDATES + 1]
        if language != storyboard.code
        and probability >= OTHER_LANGUAGE_MIN_PROBABILITY
        and probability >= OTHER_LANGUAGE_ODDS * own
    )
    return SceneLanguage(storyboard.code, odds, candidates[:OTHER_LANGUAGE_CANDIDATES])


@dataclass(frozen=True)
class FirstSpeech:
    """The storyboard's first `STORYBOARD_SPEECH_S` of speech (or all of it, when shorter),
    and how many recordings, from the first, it was taken from."""

    audio: Audio
    recordings_read: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def first_speech(recordings: Sequence[Recording], settings: TranscriptionSettings) -> FirstSpeech:
    """The storyboard's first speech: recordings are read in order until it is long enough."""
    pieces: list[Audio] = []
    heard, read = 0.0, 0
    for recording in recordings:
        if heard >= STORYBOARD_SPEECH_S:
            break
        read += 1
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
    speech = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    return FirstSpeech(speech, read)


def heard_language(
    engine: TranscriptionEngine, speech: FirstSpeech
) -> tuple[str, float, float] | None:
    """The language of the storyboard's first speech, its probability and the seconds of
    speech it was heard in; None when the storyboard has no speech."""
    if not len(speech.audio):
        return None
    language, probability = engine.detect_language(speech.audio)
    return language, probability, speech.seconds


def storyboard_language(
    engine: TranscriptionEngine,
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
) -> LanguageChoice:
    """The language of the storyboard's first speech (`transcription.language` when set)."""
    if settings.language:
        return LanguageChoice(settings.language, forced=True)
    heard = heard_language(engine, first_speech(recordings, settings))
    return LanguageChoice(heard[0] if heard else None)


def _first_speech_key(recordings: Sequence[Recording], settings: TranscriptionSettings) -> str:
    first = recordings[0].sha256 if recordings else ""
    return content_key("first speech", first, settings.model, STORYBOARD_SPEECH_S)


def _known_language(known: dict[str, Any] | None, recordings: Sequence[Recording]) -> str | None:
    """The language cached for this storyboard's first speech, when the recordings it was
    heard in are still the first ones (and, when they held less speech than a detection
    reads, still all of them)."""
    if known is None or not isinstance(known.get("language"), str):
        return None
    read = known.get("recordings")
    if not isinstance(read, list) or [r.sha256 for r in recordings[: len(read)]] != read:
        return None
    if not known.get("complete") and len(recordings) != len(read):
        return None
    return str(known["language"])


def known_storyboard_language(
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
    cache: CacheLocation,
    named: str | None,
) -> LanguageChoice | None:
    """The language the user named, else the one cached for the storyboard's first speech;
    None while it is still to be heard."""
    if named:
        return LanguageChoice(named, forced=True)
    key = _first_speech_key(recordings, settings)
    known = _known_language(cache.open().get_json(CACHE_NAMESPACE, key), recordings)
    return LanguageChoice(known) if known is not None else None


def cached_storyboard_language(
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
    cache: CacheLocation,
    named: str | None,
) -> tuple[LanguageChoice, tuple[str, float, float] | None]:
    """The language the user named, else the one of the storyboard's first speech, cached by
    the recordings that speech comes from, so a re-run or a retake of a later scene decodes
    nothing here; and, when it was heard just now, what `heard_language` says of it."""
    known = known_storyboard_language(recordings, settings, cache, named)
    if known is not None:
        return known, None
    store = cache.open()
    key = _first_speech_key(recordings, settings)
    speech = first_speech(recordings, settings)
    heard = heard_language(load_engine(settings, cache.local / MODELS), speech)
    if heard is None:
        return LanguageChoice(None), None
    language, probability, seconds = heard
    entry = {
        "language": language,
        "probability": probability,
        "recordings": [r.sha256 for r in recordings[: speech.recordings_read]],
        "complete": seconds >= STORYBOARD_SPEECH_S,
    }
    store.put_json(CACHE_NAMESPACE, key, entry)
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
