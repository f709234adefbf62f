"""Transcribe: each narration into text, its language and an English reading for the prompt."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache import ContentCache, content_key
from clients.errors import AudioError
from clients.media import decode_audio
from clients.whisper import RawTranscription, TranscriptionEngine, load_engine
from configs.settings import TranscriptionSettings
from tasks.scene import Recording, SceneFailure, Segment, Transcript

WHISPER_SAMPLE_RATE = 16_000
CACHE_NAMESPACE = "transcripts"

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


def _speech_segments(raw: RawTranscription, no_speech_threshold: float) -> tuple[Segment, ...]:
    """Segments Whisper itself believes are speech (its own no-speech rule)."""
    return tuple(
        Segment(start_s=segment.start_s, end_s=segment.end_s, text=segment.text)
        for segment in raw.segments
        if segment.text
        and not (segment.no_speech_prob > no_speech_threshold and segment.avg_logprob < -1.0)
    )


def is_no_speech(raw: RawTranscription, segments: tuple[Segment, ...]) -> bool:
    text = _normalise(" ".join(segment.text for segment in segments))
    if not text:
        return True
    if text in _HALLUCINATIONS:
        worst = max((segment.no_speech_prob for segment in raw.segments), default=1.0)
        return worst >= 0.2
    return False


def transcribe_recording(
    engine: TranscriptionEngine,
    recording: Recording,
    settings: TranscriptionSettings,
    language: str | None = None,
) -> Transcript:
    """Read one recording. Raises AudioError when it cannot be decoded."""
    started = time.perf_counter()
    audio = decode_audio(recording.path, WHISPER_SAMPLE_RATE)
    duration = len(audio) / WHISPER_SAMPLE_RATE
    beam_size, vad_filter = settings.beam_size, settings.vad_filter
    raw = engine.transcribe(
        audio, language=language, task="transcribe", beam_size=beam_size, vad_filter=vad_filter
    )
    segments = _speech_segments(raw, settings.no_speech_threshold)
    no_speech = is_no_speech(raw, segments)
    text = "" if no_speech else " ".join(segment.text for segment in segments)
    english_text = text
    if text and raw.language != "en":
        translated = engine.transcribe(
            audio,
            language=raw.language,
            task="translate",
            beam_size=beam_size,
            vad_filter=vad_filter,
        )
        english_text = " ".join(s.text for s in _speech_segments(translated, 1.0)) or text
    return Transcript(
        language=raw.language,
        language_probability=round(raw.language_probability, 4),
        text=text,
        english_text=english_text,
        segments=() if no_speech else segments,
        audio_duration_s=round(duration, 3),
        no_speech=no_speech,
        seconds=round(time.perf_counter() - started, 3),
    )


def _transcript_from_json(document: dict[str, Any]) -> Transcript:
    fields = {key: value for key, value in document.items() if key != "segments"}
    segments = tuple(Segment(**segment) for segment in document.get("segments", ()))
    return Transcript(**fields, segments=segments)


def cached_transcription(
    cache: ContentCache,
    recording: Recording,
    settings: TranscriptionSettings,
    models_dir: Path,
    language: str | None,
) -> Transcript:
    """The transcript from the cache when this audio was read with these settings before."""
    key = content_key(recording.sha256, settings.model_dump(mode="json"), language)
    document = cache.get_json(CACHE_NAMESPACE, key)
    if document is not None:
        try:
            cached = _transcript_from_json(document)
        except (TypeError, ValueError):
            cached = None
        if cached is not None:
            return replace(cached, from_cache=True)
    engine = load_engine(settings, models_dir)
    transcript = transcribe_recording(engine, recording, settings, language)
    cache.put_json(CACHE_NAMESPACE, key, {**asdict(transcript), "from_cache": False})
    return transcript


@task(name="transcribe", cache_policy=NO_CACHE)
def transcribe(
    recording: Recording,
    settings: TranscriptionSettings,
    cache_dir: Path,
    language: str | None = None,
) -> Transcript | SceneFailure:
    try:
        return cached_transcription(
            ContentCache(cache_dir), recording, settings, cache_dir / "models", language
        )
    except AudioError as exc:
        get_run_logger().warning("%s: %s", recording.scene_id, exc)
        return SceneFailure(reason=str(exc))
