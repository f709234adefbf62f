"""Transcribe: each narration into text, its language and an English reading for the prompt."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache import ContentCache, content_key
from clients.media.audio import decode_audio
from clients.services import load_engine
from clients.storage import CacheLocation
from clients.transcription.types import RawSegment, RawTranscription, TranscriptionEngine
from configs.settings import TranscriptionSettings
from domain.errors import AudioError, StorageError
from domain.scene import Recording, SceneFailure, Segment, Transcript, Word
from tasks.ingest import recording_here
from tasks.language import LanguageChoice, scene_language, storyboard_language
from tasks.packing import PACK_LIMIT_S, Audio, SpeechClip, plan_packs, speech_clip, transcribe_pack

WHISPER_SAMPLE_RATE = 16_000
CACHE_NAMESPACE = "transcripts"
CLEAR_SPEECH_S = 0.5
"""Speech the VAD (Silero) hears for at least this long is speech, whatever Whisper's own
no-speech guess says: for a clear one-second word that guess sits near its threshold, and the
processor's instruction set decides which side it falls on."""
SPEECH_RULE = 2
"""Bumped when what counts as speech changes: a transcript an older rule called no speech is
read again rather than taken from the cache (its words, when it had any, still are)."""

# What Whisper is known to invent from silence or noise.
_HALLUCINATIONS = frozenset(
    {
        "you",
        "thank you",
        "thanks",
        "thank you for watching",
        "thanks for watching",
        "bye",
        "subtitles by the amaraorg community",
        "",
    }
)
_NOT_WORD = re.compile(r"[^\w\s]+")


def _normalise(text: str) -> str:
    return " ".join(_NOT_WORD.sub("", text).casefold().split())


def _is_speech(segment: RawSegment, no_speech_threshold: float) -> bool:
    """Whisper's own rule: a segment it both thinks silent and is unsure of is not speech."""
    return bool(segment.text) and not (
        segment.no_speech_prob > no_speech_threshold and segment.avg_logprob < -1.0
    )


def no_speech_threshold(settings: TranscriptionSettings, speech_s: float | None) -> float:
    """Whisper's no-speech threshold for a recording in which the VAD heard `speech_s` of
    speech (None: not measured): never met once the VAD has heard clear speech."""
    if speech_s is not None and speech_s >= CLEAR_SPEECH_S:
        return 1.0
    return settings.no_speech_threshold


def _speech_segments(raw: RawTranscription, no_speech_threshold: float) -> tuple[Segment, ...]:
    return tuple(
        Segment(
            start_s=segment.start_s,
            end_s=segment.end_s,
            text=segment.text,
            words=tuple(Word(word.start_s, word.end_s, word.text) for word in segment.words),
        )
        for segment in raw.segments
        if _is_speech(segment, no_speech_threshold)
    )


def is_no_speech(
    raw: RawTranscription, segments: tuple[Segment, ...], speech_s: float | None = None
) -> bool:
    """No words, or only words Whisper invents from silence where the VAD heard no clear
    speech."""
    text = _normalise(" ".join(segment.text for segment in segments))
    if not text:
        return True
    if speech_s is not None and speech_s >= CLEAR_SPEECH_S:
        return False
    if text in _HALLUCINATIONS:
        worst = max((segment.no_speech_prob for segment in raw.segments), default=1.0)
        return worst >= 0.2
    return False


def _english(
    engine: TranscriptionEngine,
    audio: Audio,
    text: str,
    language: str,
    settings: TranscriptionSettings,
) -> str:
    """What the prompt is built from: the text itself, or Whisper's English translation."""
    if not text or language == "en":
        return text
    translated = engine.transcribe(
        audio,
        language=language,
        task="translate",
        beam_size=settings.beam_size,
        vad_filter=settings.vad_filter,
    )
    return " ".join(s.text for s in _speech_segments(translated, 1.0)) or text


def _transcript(
    engine: TranscriptionEngine,
    audio: Audio,
    raw: RawTranscription,
    segments: tuple[Segment, ...],
    settings: TranscriptionSettings,
    seconds: float,
    *,
    speech_s: float | None,
) -> Transcript:
    started = time.perf_counter()
    no_speech = is_no_speech(raw, segments, speech_s)
    text = "" if no_speech else " ".join(segment.text for segment in segments)
    english_text = _english(engine, audio, text, raw.language, settings)
    return Transcript(
        language=raw.language,
        language_probability=round(raw.language_probability, 4),
        text=text,
        english_text=english_text,
        segments=() if no_speech else segments,
        audio_duration_s=round(len(audio) / WHISPER_SAMPLE_RATE, 3),
        no_speech=no_speech,
        seconds=round(seconds + time.perf_counter() - started, 3),
    )


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
    started = time.perf_counter()
    if speech_s is None and settings.vad_filter:
        speech_s = speech_clip(0, audio).duration_s
    raw = engine.transcribe(
        audio,
        language=language,
        task="transcribe",
        beam_size=settings.beam_size,
        vad_filter=settings.vad_filter,
        word_timestamps=settings.word_timestamps,
    )
    segments = _speech_segments(raw, no_speech_threshold(settings, speech_s))
    seconds = time.perf_counter() - started
    return _transcript(engine, audio, raw, segments, settings, seconds, speech_s=speech_s)


def transcribe_recordings(
    engine: TranscriptionEngine,
    recordings: Sequence[Recording],
    settings: TranscriptionSettings,
    language: LanguageChoice | None = None,
) -> list[Transcript | SceneFailure]:
    """Every recording, in the storyboard's language (detected from these recordings' first
    speech when `language` is None), short ones packed into shared Whisper windows
    (tasks/packing.py)."""
    if language is None:
        language = storyboard_language(engine, recordings, settings)
    results: dict[int, Transcript | SceneFailure] = {}
    audios: dict[int, Audio] = {}
    heard: dict[int, float | None] = {}
    clips: list[SpeechClip] = []
    packing = settings.pack_short_scenes and settings.vad_filter
    for index, recording in enumerate(recordings):
        started = time.perf_counter()
        if recording.problem:
            results[index] = SceneFailure(reason=recording.problem)
            continue
        try:
            path = recording_here(recording)
            audio = decode_audio(path, WHISPER_SAMPLE_RATE, settings.max_recording_s)
        except (AudioError, StorageError) as exc:
            results[index] = SceneFailure(reason=str(exc))
            continue
        audios[index] = audio
        clip = speech_clip(index, audio)
        heard[index] = clip.duration_s if settings.vad_filter else None
        own = scene_language(engine, clip, language)
        if packing and clip.duration_s == 0.0:
            silent = RawTranscription(own or "", 0.0, ())
            seconds = time.perf_counter() - started
            results[index] = _transcript(engine, audio, silent, (), settings, seconds, speech_s=0.0)
        elif packing and own == language.code and clip.duration_s <= PACK_LIMIT_S:
            clips.append(clip)
        else:
            results[index] = transcribe_audio(engine, audio, settings, own, speech_s=heard[index])

    _transcribe_packs(engine, clips, audios, heard, settings, language.code, results)
    return [results[index] for index in range(len(recordings))]


def _transcribe_packs(
    engine: TranscriptionEngine,
    clips: Sequence[SpeechClip],
    audios: Mapping[int, Audio],
    heard: Mapping[int, float | None],
    settings: TranscriptionSettings,
    language: str | None,
    results: dict[int, Transcript | SceneFailure],
) -> None:
    """The short scenes' transcripts into `results`: packed into shared windows while the
    windows prove their words, scene by scene after the first that does not."""

    def keep(segment: RawSegment) -> bool:
        return _is_speech(segment, settings.no_speech_threshold)

    aligning = True
    for pack in plan_packs(clips):
        packed = None
        if aligning and len(pack) > 1:
            packed = transcribe_pack(engine, pack, settings, language, keep)
            aligning = packed is not None
        for clip in pack:
            audio, speech_s = audios[clip.key], heard[clip.key]
            if packed is None:
                results[clip.key] = transcribe_audio(
                    engine, audio, settings, language, speech_s=speech_s
                )
                continue
            part = packed[clip.key]
            results[clip.key] = _transcript(
                engine, audio, part.raw, part.segments, settings, part.seconds, speech_s=speech_s
            )


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


def _cache_key(
    recording: Recording, settings: TranscriptionSettings, language: LanguageChoice
) -> str:
    """What the audio was read with. `word_timestamps` counts only when on, so transcripts
    cached before it existed (and every one read without it) keep their keys."""
    ignored = {"scenes_per_task", "max_recording_s"}
    if not settings.word_timestamps:
        ignored.add("word_timestamps")
    reading = settings.model_dump(mode="json", exclude=ignored)
    return content_key(recording.sha256, reading, language.code, language.forced)


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
        if recording.problem:
            continue
        document = cache.get_json(CACHE_NAMESPACE, _cache_key(recording, settings, language))
        if document is None or _silent_by_an_older_rule(document):
            continue
        try:
            results[index] = replace(_transcript_from_json(document), from_cache=True)
        except (TypeError, ValueError):
            continue
    first_of: dict[str, int] = {}
    copies: dict[int, int] = {}
    missing = []
    for index in range(len(recordings)):
        if index in results:
            continue
        recording = recordings[index]
        if not recording.problem and recording.sha256 in first_of:
            copies[index] = first_of[recording.sha256]  # the same audio under another name
            continue
        if not recording.problem:
            first_of.setdefault(recording.sha256, index)
        missing.append(index)
    if missing:
        engine = load_engine(settings, models_dir)
        fresh = transcribe_recordings(
            engine, [recordings[index] for index in missing], settings, language
        )
        for index, result in zip(missing, fresh, strict=True):
            results[index] = result
            if isinstance(result, Transcript):
                key = _cache_key(recordings[index], settings, language)
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
    results = cached_transcripts(
        cache.open(), recordings, settings, cache.local / "models", language
    )
    logger = get_run_logger()
    for recording, result in zip(recordings, results, strict=True):
        if isinstance(result, SceneFailure):
            logger.warning("%s: %s", recording.scene_id, result.reason)
    return results
