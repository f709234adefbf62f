"""What Whisper invents rather than hears: words from silence, loops, stock phrases, and
readings denser than the speech they came from. Such a reading never becomes a prompt."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from clients.transcription.types import RawSegment

SILENCE_WORDS = frozenset(
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
"""Whole readings Whisper is known to write for silence or noise."""
STOCK_PHRASES = (
    "if you have any questions please let me know in the comment section below",
    "let me know in the comment",
    "in the comment section below",
    "see you in the next video",
    "thank you for watching",
    "thanks for watching",
    "please subscribe",
    "subscribe to my channel",
    "like and subscribe",
    "subtitles by the amaraorg community",
)
"""Phrases of the video captions Whisper learnt from, which it writes for speech it cannot read."""
STOCK_SHARE = 0.6
"""A stock phrase is an invention when it is most of the reading and Whisper was unsure."""
UNSURE_LOGPROB = -0.6
MAX_COMPRESSION_RATIO = 2.4
"""Whisper's own test for a looping reading (its temperature fallback uses the same)."""
MAX_CHARACTERS_PER_S = 30.0
SLACK_CHARACTERS = 20
"""Fast speech is about 15 characters a second; twice that (and a few words more, for a
one-second scene the VAD cut tightly) was not spoken."""
_LOOP = re.compile(r"(\S.{1,40}?)\1{4,}")
_NOT_WORD = re.compile(r"[^\w\s]+")


def normalise(text: str) -> str:
    return " ".join(_NOT_WORD.sub("", text).casefold().split())


def compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def mean_logprob(segments: Sequence[RawSegment]) -> float | None:
    """Whisper's average log probability of a reading's tokens, weighted by segment length."""
    if not segments:
        return None
    weights = [max(segment.end_s - segment.start_s, 0.01) for segment in segments]
    total = sum(w * segment.avg_logprob for w, segment in zip(weights, segments, strict=True))
    return total / sum(weights)


def invented_reason(text: str, speech_s: float, logprob: float | None) -> str | None:
    """Why this reading of `speech_s` seconds of speech was invented, not heard; None when
    nothing says so."""
    normal = normalise(text)
    if not normal:
        return None
    loop = _LOOP.search(normal + " ")
    if loop:
        return f"Whisper's reading loops ({loop.group(1).strip()!r} again and again)"
    if compression_ratio(normal) > MAX_COMPRESSION_RATIO:
        return "Whisper's reading repeats itself"
    unsure = logprob is None or logprob < UNSURE_LOGPROB
    for phrase in STOCK_PHRASES:
        if unsure and phrase in normal and len(phrase) >= STOCK_SHARE * len(normal):
            return f"Whisper's reading is a stock phrase, not what was said ({phrase!r})"
    if speech_s > 0 and len(normal) > MAX_CHARACTERS_PER_S * speech_s + SLACK_CHARACTERS:
        return f"Whisper's reading holds more words than {speech_s:.1f} s of speech can"
    return None
