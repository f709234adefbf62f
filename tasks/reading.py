"""One Whisper reading of a recording and what becomes of it: the segments that are speech,
the English the prompt is built from, and the transcript, or the scene failed when the reading
was invented (`tasks/invented.py`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from clients.transcription.types import RawSegment, RawTranscription, TranscriptionEngine
from configs.settings import TranscriptionSettings
from domain.scene import SceneFailure, Segment, Transcript, Word
from tasks.invented import SILENCE_WORDS, invented_reason, mean_logprob, normalise
from tasks.packing import Audio, decode_bounds

WHISPER_SAMPLE_RATE = 16_000
CLEAR_SPEECH_S = 0.5
"""Speech the VAD (Silero) hears for at least this long is speech, whatever Whisper's own
no-speech guess says: for a clear one-second word that guess sits near its threshold, and the
processor's instruction set decides which side it falls on."""


def is_speech(segment: RawSegment, no_speech_threshold: float) -> bool:
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
        if is_speech(segment, no_speech_threshold)
    )


def is_no_speech(
    raw: RawTranscription, segments: tuple[Segment, ...], speech_s: float | None = None
) -> bool:
    """No words, or only words Whisper invents from silence where the VAD heard no clear
    speech."""
    text = normalise(" ".join(segment.text for segment in segments))
    if not text:
        return True
    if speech_s is not None and speech_s >= CLEAR_SPEECH_S:
        return False
    if text in SILENCE_WORDS:
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
        bounds=decode_bounds(settings, len(audio) / WHISPER_SAMPLE_RATE, fallback=False),
    )
    english = " ".join(s.text for s in _speech_segments(translated, 1.0))
    invented = invented_reason(english, len(audio) / WHISPER_SAMPLE_RATE, None)
    return english if english and not invented else text


@dataclass(frozen=True)
class Reading:
    """One Whisper reading of a recording, before it becomes a transcript."""

    raw: RawTranscription
    segments: tuple[Segment, ...]
    seconds: float
    speech_s: float | None
    probability: float | None = None
    """What the scene's own detection measured for the reading's language."""

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)

    def invented(self, audio_s: float) -> str | None:
        """Why this reading was invented rather than heard (tasks/invented.py)."""
        heard = self.speech_s if self.speech_s is not None else audio_s
        return invented_reason(self.text, heard, mean_logprob(self.raw.segments))


def transcript_of(
    engine: TranscriptionEngine, audio: Audio, reading: Reading, settings: TranscriptionSettings
) -> Transcript:
    started = time.perf_counter()
    no_speech = is_no_speech(reading.raw, reading.segments, reading.speech_s)
    text = "" if no_speech else reading.text
    english_text = _english(engine, audio, text, reading.raw.language, settings)
    return Transcript(
        language=reading.raw.language,
        language_probability=reading.probability,
        text=text,
        english_text=english_text,
        segments=() if no_speech else reading.segments,
        audio_duration_s=round(len(audio) / WHISPER_SAMPLE_RATE, 3),
        no_speech=no_speech,
        seconds=round(reading.seconds + time.perf_counter() - started, 3),
    )


def guarded(
    engine: TranscriptionEngine, audio: Audio, reading: Reading, settings: TranscriptionSettings
) -> Transcript | SceneFailure:
    """The reading's transcript, or the scene failed when the reading was invented or is
    empty where the VAD heard clear speech."""
    invented = reading.invented(len(audio) / WHISPER_SAMPLE_RATE)
    heard = reading.speech_s or 0.0
    if not invented and heard >= CLEAR_SPEECH_S and not normalise(reading.text):
        invented = f"Whisper read no words in {heard:.1f} s of speech"
    if invented:
        return SceneFailure(
            reason=f"{invented}: re-record the narration or name its "
            "language (`language:` of the scene in storyboard.yaml)"
        )
    return transcript_of(engine, audio, reading, settings)


def read_audio(
    engine: TranscriptionEngine,
    audio: Audio,
    settings: TranscriptionSettings,
    language: str | None,
    *,
    speech_s: float | None,
    fallback: bool = True,
) -> Reading:
    """One Whisper reading of a whole recording in `language` (None: Whisper's choice).

    Whisper falls back to sampling when its first reading fails its own tests, and a sampled
    reading of a marginal recording may loop where the first did not ("55 55 55 55 55" for
    "number one"): then the first, unsampled reading is taken when it stands our tests."""
    reading = _one_reading(engine, audio, settings, language, speech_s, fallback=fallback)
    audio_s = len(audio) / WHISPER_SAMPLE_RATE
    if not fallback or len(settings.temperatures) < 2 or not reading.invented(audio_s):
        return reading
    unsampled = _one_reading(engine, audio, settings, language, speech_s, fallback=False)
    if unsampled.invented(audio_s):
        return reading
    return replace(unsampled, seconds=reading.seconds + unsampled.seconds)


def _one_reading(
    engine: TranscriptionEngine,
    audio: Audio,
    settings: TranscriptionSettings,
    language: str | None,
    speech_s: float | None,
    *,
    fallback: bool,
) -> Reading:
    started = time.perf_counter()
    audio_s = len(audio) / WHISPER_SAMPLE_RATE
    raw = engine.transcribe(
        audio,
        language=language,
        task="transcribe",
        beam_size=settings.beam_size,
        vad_filter=settings.vad_filter,
        word_timestamps=settings.word_timestamps,
        bounds=decode_bounds(settings, speech_s or audio_s, fallback=fallback),
    )
    segments = _speech_segments(raw, no_speech_threshold(settings, speech_s))
    return Reading(raw, segments, time.perf_counter() - started, speech_s)
