"""Transcribe: each narration into text, its language and an English reading for the prompt."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache import ContentCache, content_key
from clients.media.audio import decode_audio
from clients.services import load_engine
from clients.stopping import raise_if_stopping
from clients.storage import CacheLocation
from clients.transcription.types import (
    RawSegment,
    RawTranscription,
    TranscriptionEngine,
)
from configs.settings import TranscriptionSettings
from domain.errors import AudioError, StorageError
from domain.layout import MODELS, TRANSCRIPTS
from domain.scene import Recording, SceneFailure, Segment, Transcript, Word
from tasks.ingest import recording_here
from tasks.invented import mean_logprob
from tasks.language import (
    OTHER_LANGUAGE_LOGPROB,
    OTHER_LANGUAGE_SURE,
    LanguageChoice,
    SceneLanguage,
    scene_language,
    storyboard_language,
)
from tasks.packing import (
    PACK_LIMIT_S,
    Audio,
    SpeechClip,
    plan_packs,
    reading_view,
    speech_clip,
    transcribe_pack,
)
from tasks.reading import (
    WHISPER_SAMPLE_RATE,
    Reading,
    guarded,
    is_speech,
    read_audio,
    transcript_of,
)

CACHE_NAMESPACE = TRANSCRIPTS
LANGUAGE_RULE = "scene-evidence-1"
"""Part of every transcript's cache key: bumped when how a scene's language is chosen changes,
so no scene keeps a reading the rule would no longer make."""
SPEECH_RULE = 2
"""Bumped when what counts as speech changes: a transcript an older rule called no speech is
read again rather than taken from the cache (its words, when it had any, still are)."""


def transcribe_audio(
    engine: TranscriptionEngine,
    audio: Audio,
    settings: TranscriptionSettings,
    language: str | None = None,
    *,
    speech_s: float | None = None,
) -> Transcript:
    """One recording's audio, in one Whisper pass (two for non-English speech). `speech_s`:
    the seconds of speech the VAD heard in it, measured here when the VAD is on and it is
    not given."""
    if speech_s is None and settings.vad_filter:
        speech_s = speech_clip(0, audio).duration_s
    reading = read_audio(engine, audio, settings, language, speech_s=speech_s)
    return transcript_of(engine, audio, reading, settings)


@dataclass
class _Scene:
    """One recording on its way through `transcribe_recordings`."""

    audio: Audio
    clip: SpeechClip
    speech_s: float | None
    language: SceneLanguage


def _best_other_reading(
    engine: TranscriptionEngine, scene: _Scene, settings: TranscriptionSettings
) -> tuple[float, Reading] | None:
    """The best reading of the scene in one of its candidate languages that stands Whisper's
    tests (sure of its words, nothing invented), with its mean log probability."""
    audio_s = len(scene.audio) / WHISPER_SAMPLE_RATE
    kept: list[tuple[float, Reading]] = []
    for language in scene.language.candidates:
        reading = read_audio(
            engine, scene.audio, settings, language, speech_s=scene.speech_s, fallback=False
        )
        logprob = mean_logprob(reading.raw.segments)
        if logprob is None or logprob < OTHER_LANGUAGE_LOGPROB or not reading.segments:
            continue
        if reading.invented(audio_s) is None:
            probability = scene.language.probability(language)
            kept.append((logprob, replace(reading, probability=probability)))
    return max(kept, key=lambda item: item[0]) if kept else None


def _reading_by_evidence(
    engine: TranscriptionEngine, scene: _Scene, settings: TranscriptionSettings
) -> Reading | None:
    """For a scene whose own detection favours other languages: a candidate's reading when
    the detection is sure of it, or when it is better than the storyboard language's reading
    (which loops or invents when the speech is not in it); else that reading. None for a
    scene without candidates."""
    own = scene.language
    if not own.candidates:
        return None
    best = _best_other_reading(engine, scene, settings)
    if best is not None and (best[1].probability or 0.0) >= OTHER_LANGUAGE_SURE:
        return best[1]
    reading = read_audio(engine, scene.audio, settings, own.code, speech_s=scene.speech_s)
    reading = replace(reading, probability=own.probability(own.code))
    if best is None:
        return reading
    logprob = mean_logprob(reading.raw.segments)
    audio_s = len(scene.audio) / WHISPER_SAMPLE_RATE
    if logprob is None or reading.invented(audio_s) or best[0] > logprob:
        return best[1]
    return reading


def transcribe_recordings(
    engine: TranscriptionEngine,
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
    language: LanguageChoice | None = None,
) -> list[Transcript | SceneFailure]:
    """Every recording, each in its own language (`tasks/language.py`; the storyboard's is
    detected from these recordings' first speech when `language` is None), short ones of the
    storyboard's language packed into shared Whisper windows (`tasks/packing.py`)."""
    if language is None:
        language = storyboard_language(engine, recordings, settings)
    results: dict[int, Transcript | SceneFailure] = {}
    scenes: dict[int, _Scene] = {}
    packing = settings.pack_short_scenes and settings.vad_filter
    for index, recording in enumerate(recordings):
        raise_if_stopping()
        started = time.perf_counter()
        scene = _scene(engine, recording, settings, language)
        if isinstance(scene, SceneFailure):
            results[index] = scene
            continue
        scenes[index] = scene
        clip, own = scene.clip, scene.language
        by_evidence = _reading_by_evidence(engine, scene, settings)
        if by_evidence is not None:
            results[index] = guarded(engine, scene.audio, by_evidence, settings)
        elif packing and clip.duration_s == 0.0:
            silent = RawTranscription(own.code or "", 0.0, ())
            reading = Reading(silent, (), time.perf_counter() - started, 0.0)
            results[index] = transcript_of(engine, scene.audio, reading, settings)
        elif packing and own.code == language.code and clip.duration_s <= PACK_LIMIT_S:
            continue
        else:
            reading = read_audio(engine, scene.audio, settings, own.code, speech_s=scene.speech_s)
            reading = replace(reading, probability=own.probability(own.code))
            results[index] = guarded(engine, scene.audio, reading, settings)
    packed = {index: scene for index, scene in scenes.items() if index not in results}
    _transcribe_packs(engine, packed, settings, language.code, results)
    return [results[index] for index in range(len(recordings))]


def _scene(
    engine: TranscriptionEngine,
    recording: Recording,
    settings: TranscriptionSettings,
    language: LanguageChoice,
) -> _Scene | SceneFailure:
    """A recording's audio, its speech and its language evidence, or why it has none."""
    if recording.problem:
        return SceneFailure(reason=recording.problem)
    try:
        path = recording_here(recording)
        audio = decode_audio(path, WHISPER_SAMPLE_RATE, settings.max_recording_s)
    except (AudioError, StorageError) as exc:
        return SceneFailure(reason=str(exc))
    clip = speech_clip(0, audio)
    own = scene_language(
        engine,
        clip,
        language,
        recording.language,
        heard=lambda: reading_view(audio, settings.vad_filter),
    )
    return _Scene(audio, clip, clip.duration_s if settings.vad_filter else None, own)


def _transcribe_packs(
    engine: TranscriptionEngine,
    scenes: Mapping[int, _Scene],
    settings: TranscriptionSettings,
    language: str | None,
    results: dict[int, Transcript | SceneFailure],
) -> None:
    """The short scenes' transcripts into `results`: packed into shared windows while the
    windows prove their words, scene by scene after the first that does not. A scene whose
    part of a window reads as invented is read again alone."""

    def keep(segment: RawSegment) -> bool:
        return is_speech(segment, settings.no_speech_threshold)

    clips = [replace(scene.clip, key=index) for index, scene in scenes.items()]
    aligning = True
    for pack in plan_packs(clips):
        packed = None
        if aligning and len(pack) > 1:
            packed = transcribe_pack(engine, pack, settings, language, keep)
            aligning = packed is not None
        for clip in pack:
            raise_if_stopping()
            scene = scenes[clip.key]
            probability, speech_s = scene.language.probability(language), scene.speech_s
            reading = None
            if packed is not None:
                part = packed[clip.key]
                reading = Reading(part.raw, part.segments, part.seconds, speech_s)
            if reading is None or reading.invented(len(scene.audio) / WHISPER_SAMPLE_RATE):
                reading = read_audio(engine, scene.audio, settings, language, speech_s=speech_s)
            reading = replace(reading, probability=probability)
            results[clip.key] = guarded(engine, scene.audio, reading, settings)


def _segment_from_json(document: dict[str, Any]) -> Segment:
    """A cached segment; one cached before words were kept has none."""
    words = tuple(Word(**word) for word in document.get("words", ()))
    return Segment(**{**document, "words": words})


def _silent_by_an_older_rule(document: dict[str, Any]) -> bool:
    return bool(document.get("no_speech")) and document.get("speech_rule", 1) != SPEECH_RULE


def _transcript_from_json(document: dict[str, Any]) -> Transcript:
    fields = {k: v for k, v in document.items() if k not in ("segments", "speech_rule")}
    segments = tuple(_segment_from_json(segment) for segment in document.get("segments", ()))
    return Transcript(**fields, segments=segments)


def named_scenes(scene_ids: Sequence[str]) -> str:
    """Scenes as a task's name or a log line names them: the first three, then an ellipsis."""
    return ", ".join(scene_ids[:3]) + (", …" if len(scene_ids) > 3 else "")


def transcript_key(
    recording: Recording, settings: TranscriptionSettings, language: LanguageChoice
) -> str:
    """What the audio was read with. `word_timestamps` counts only when on, so transcripts
    cached before it existed (and every one read without it) keep their keys."""
    ignored = {"scenes_per_task", "max_recording_s"}
    if not settings.word_timestamps:
        ignored.add("word_timestamps")
    reading = settings.model_dump(mode="json", exclude=ignored)
    named = recording.language or language.code
    return content_key(recording.sha256, reading, named, language.forced, LANGUAGE_RULE)


def reads_any(
    cache: ContentCache,
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
    language: LanguageChoice,
) -> bool:
    """Whether transcribing `recordings` will read any of them (one is not in the cache)."""
    return any(
        not recording.problem and known_transcript(cache, recording, settings, language) is None
        for recording in recordings
    )


def known_transcript(
    cache: ContentCache,
    recording: Recording,
    settings: TranscriptionSettings,
    language: LanguageChoice,
) -> Transcript | None:
    """The recording's transcript when `cache` holds one read with these settings."""
    if recording.problem:
        return None
    document = cache.get_json(CACHE_NAMESPACE, transcript_key(recording, settings, language))
    if document is None or _silent_by_an_older_rule(document):
        return None
    try:
        return replace(_transcript_from_json(document), from_cache=True)
    except (TypeError, ValueError):
        return None


def cached_transcripts(
    cache: ContentCache,
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
    models_dir: Path,
    language: LanguageChoice,
) -> list[Transcript | SceneFailure]:
    """Transcripts of every recording: from the cache when this audio was read with these
    settings before, else transcribed together (and cached). Recordings with the same audio
    are transcribed once."""
    results: dict[int, Transcript | SceneFailure] = {}
    for index, recording in enumerate(recordings):
        if (known := known_transcript(cache, recording, settings, language)) is not None:
            results[index] = known
    first_of: dict[tuple[str, str | None], int] = {}
    copies: dict[int, int] = {}
    missing = []
    for index in range(len(recordings)):
        if index in results:
            continue
        recording = recordings[index]
        same = (recording.sha256, recording.language)
        if not recording.problem and same in first_of:
            copies[index] = first_of[same]  # the same audio under another name
            continue
        if not recording.problem:
            first_of.setdefault(same, index)
        missing.append(index)
    if missing:
        engine = load_engine(settings, models_dir)
        fresh = transcribe_recordings(
            engine, [recordings[index] for index in missing], settings, language
        )
        for index, result in zip(missing, fresh, strict=True):
            results[index] = result
            if isinstance(result, Transcript):
                key = transcript_key(recordings[index], settings, language)
                written = {**asdict(result), "from_cache": False, "speech_rule": SPEECH_RULE}
                cache.put_json(CACHE_NAMESPACE, key, written)
    for index, original in copies.items():
        copied = results[original]
        results[index] = replace(copied, seconds=0.0) if isinstance(copied, Transcript) else copied
    return [results[index] for index in range(len(recordings))]


@task(name="transcribe", cache_policy=NO_CACHE)
def transcribe(
    recordings: list[Recording],
    settings: TranscriptionSettings,
    cache: CacheLocation,
    language: LanguageChoice,
) -> list[Transcript | SceneFailure]:
    results = cached_transcripts(cache.open(), recordings, settings, cache.local / MODELS, language)
    logger = get_run_logger()
    for recording, result in zip(recordings, results, strict=True):
        if isinstance(result, SceneFailure):
            logger.warning("%s: %s", recording.scene_id, result.reason)
    return results
