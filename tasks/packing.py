"""Transcribe many short scenes in few Whisper passes.

Whisper always encodes a 30-second window, so a 4-second narration costs as much encoder work
as a 30-second one. Here each scene is first cut down to its speech (Silero VAD), scenes
without speech are settled without Whisper at all, and the remaining short scenes are packed
back to back, a second of silence apart, into windows of at most `PACK_LIMIT_S`. Each window
is transcribed once with word timestamps. Every word goes back to the scene it was spoken in,
on that scene's own timeline, but only when the window proves where each word was spoken
(`verified_owners`): Whisper's timestamps drift in a window of many short scenes, and its
decoder can carry one scene's words into the next or stop early. A window that does not prove
it, or whose language Whisper is unsure of, is transcribed scene by scene instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clients.transcription.types import (
    DecodeBounds,
    RawSegment,
    RawTranscription,
    TranscriptionEngine,
)
from configs.settings import TranscriptionSettings
from domain.scene import Segment, Word

SAMPLE_RATE = 16_000
PACK_LIMIT_S = 28.0
PACK_GAP_S = 1.0
MIN_PACK_LANGUAGE_PROBABILITY = 0.7
WORD_TOLERANCE_S = 0.4
"""How far a word may reach out of its scene's speech into the silence between scenes."""
EDGE_TOLERANCE_S = 1.0
"""How far inside its speech (VAD pads it by 0.4 s) a scene's first and last words may lie."""
MAX_WORDS_PER_S = 6.0

Audio = np.ndarray[Any, np.dtype[np.float32]]

TOKENS_PER_S = 20
"""Tokens a second of speech can hold, generously (timestamps and non-Latin scripts too): a
reading is cut off there, so a looping one costs a few tokens more than the scene, not 224."""
MIN_TOKENS, MAX_TOKENS = 32, 224


def decode_bounds(
    settings: TranscriptionSettings, audio_s: float, *, fallback: bool
) -> DecodeBounds:
    """What one reading of `audio_s` seconds may cost: its tokens, and Whisper's temperature
    fallback (`transcription.temperatures`) or none."""
    tokens = min(MAX_TOKENS, MIN_TOKENS + math.ceil(TOKENS_PER_S * min(audio_s, 30.0)))
    return DecodeBounds(settings.temperatures if fallback else (0.0,), tokens)


@dataclass
class SpeechClip:
    """One scene's speech, cut out of its recording, with the way back to the original times."""

    key: int
    audio: Audio
    pieces: list[tuple[float, float, float]] = field(default_factory=list)
    """(start, end) in the speech-only audio and the start in the original recording."""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def original_time(self, t: float) -> float:
        for start, end, original in self.pieces:
            if t <= end:
                return original + max(0.0, t - start)
        start, end, original = self.pieces[-1]
        return original + (end - start)


def speech_clip(key: int, audio: Audio) -> SpeechClip:
    """The speech in `audio` (empty when the VAD hears none)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=500))
    parts: list[Audio] = []
    clip = SpeechClip(key=key, audio=np.zeros(0, np.float32))
    position = 0.0
    for chunk in chunks:
        piece = audio[chunk["start"] : chunk["end"]]
        length = len(piece) / SAMPLE_RATE
        clip.pieces.append((position, position + length, chunk["start"] / SAMPLE_RATE))
        parts.append(piece)
        position += length
    if parts:
        clip.audio = np.concatenate(parts).astype(np.float32)
    return clip


def reading_view(audio: Audio, vad_filter: bool) -> Audio:
    """What a reading of `audio` alone hears: with the VAD filter, the speech faster-whisper's
    own VAD (its default options) keeps, back to back; else all of it."""
    if not vad_filter:
        return audio
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    pieces, _ = collect_chunks(audio, get_speech_timestamps(audio, VadOptions()))
    return np.concatenate(pieces).astype(np.float32, copy=False)


def plan_packs(
    clips: Sequence[SpeechClip], limit_s: float = PACK_LIMIT_S
) -> list[list[SpeechClip]]:
    """Consecutive clips grouped greedily into windows of at most `limit_s` seconds."""
    packs: list[list[SpeechClip]] = []
    current: list[SpeechClip] = []
    length = 0.0
    for clip in clips:
        added = clip.duration_s + (PACK_GAP_S if current else 0.0)
        if current and length + added > limit_s:
            packs.append(current)
            current, length, added = [], 0.0, clip.duration_s
        current.append(clip)
        length += added
    if current:
        packs.append(current)
    return packs


@dataclass(frozen=True)
class PackedResult:
    language: str
    language_probability: float
    segments: tuple[Segment, ...]
    raw: RawTranscription
    seconds: float


def _pack_audio(pack: Sequence[SpeechClip]) -> tuple[Audio, list[float]]:
    """The pack's clips back to back, `PACK_GAP_S` of silence apart, and where each starts."""
    gap = np.zeros(round(PACK_GAP_S * SAMPLE_RATE), np.float32)
    offsets: list[float] = []
    parts: list[Audio] = []
    position = 0.0
    for index, clip in enumerate(pack):
        if index:
            parts.append(gap)
            position += PACK_GAP_S
        offsets.append(position)
        parts.append(clip.audio)
        position += clip.duration_s
    return np.concatenate(parts), offsets


def _segments_by_scene(
    owners: Sequence[tuple[RawSegment, int]],
    pack: Sequence[SpeechClip],
    offsets: Sequence[float],
) -> tuple[dict[int, list[Segment]], dict[int, list[RawSegment]]]:
    """Each clip's segments moved onto its own timeline, and its raw segments, by pack index."""
    grouped: dict[int, list[Segment]] = {index: [] for index in range(len(pack))}
    kept: dict[int, list[RawSegment]] = {index: [] for index in range(len(pack))}
    for segment, index in owners:
        clip, offset = pack[index], offsets[index]
        words = tuple(
            Word(
                clip.original_time(max(0.0, word.start_s - offset)),
                clip.original_time(max(0.0, word.end_s - offset)),
                word.text,
            )
            for word in segment.words
        )
        text = "".join(word.text for word in words).strip()
        start, end = words[0].start_s, max(words[-1].end_s, words[0].start_s)
        grouped[index].append(Segment(start, end, text, words))
        kept[index].append(segment)
    return grouped, kept


def transcribe_pack(
    engine: TranscriptionEngine,
    pack: Sequence[SpeechClip],
    settings: TranscriptionSettings,
    language: str | None,
    keep: Callable[[RawSegment], bool],
) -> dict[int, PackedResult] | None:
    """Each clip's segments on its own timeline, from one Whisper pass over the whole pack.

    None when Whisper is not confident of one language for the pack.
    """
    started = time.perf_counter()
    audio, offsets = _pack_audio(pack)
    raw = engine.transcribe(
        audio,
        language=language,
        task="transcribe",
        beam_size=settings.packed_beam_size,
        vad_filter=False,
        word_timestamps=True,
        bounds=decode_bounds(settings, len(audio) / SAMPLE_RATE, fallback=True),
    )
    if language is None and raw.language_probability < MIN_PACK_LANGUAGE_PROBABILITY:
        return None
    spans = [(offset, offset + clip.duration_s) for offset, clip in zip(offsets, pack, strict=True)]
    owners = verified_owners(raw, spans, keep)
    if owners is None:
        return None
    grouped, kept = _segments_by_scene(owners, pack, offsets)
    seconds = time.perf_counter() - started
    total = sum(clip.duration_s for clip in pack) or 1.0
    return {
        clip.key: PackedResult(
            language=raw.language,
            language_probability=raw.language_probability,
            segments=tuple(grouped[index]),
            raw=RawTranscription(raw.language, raw.language_probability, tuple(kept[index])),
            seconds=seconds * clip.duration_s / total,
        )
        for index, clip in enumerate(pack)
    }


def _owner(start: float, end: float, spans: Sequence[tuple[float, float]]) -> int | None:
    """The one scene whose speech (give or take `WORD_TOLERANCE_S`) holds [start, end]."""
    for index, (first, last) in enumerate(spans):
        if start >= first - WORD_TOLERANCE_S and end <= last + WORD_TOLERANCE_S:
            return index
    return None


def verified_owners(
    raw: RawTranscription,
    spans: Sequence[tuple[float, float]],
    keep: Callable[[RawSegment], bool],
) -> list[tuple[RawSegment, int]] | None:
    """Each kept segment with the scene it was spoken in, or None unless the whole pack
    proves it: every segment lies, word by word, inside one scene's speech; every scene gets
    words that reach from near its start to near its end; no scene has more words than a
    person can say. A pack that fails is transcribed scene by scene instead."""
    owners: list[tuple[RawSegment, int]] = []
    for segment in raw.segments:
        if not keep(segment) or not segment.words:
            continue
        found = {_owner(word.start_s, word.end_s, spans) for word in segment.words}
        owner = found.pop()
        if owner is None or found:
            return None
        owners.append((segment, owner))
    for index, (first, last) in enumerate(spans):
        words = [word for segment, owner in owners if owner == index for word in segment.words]
        if not words:
            return None
        if words[0].start_s > first + EDGE_TOLERANCE_S or words[-1].end_s < last - EDGE_TOLERANCE_S:
            return None
        if len(words) > MAX_WORDS_PER_S * max(last - first, 1.0):
            return None
    return owners
