"""Captions by word: Whisper's segments cut into short captions that follow the spoken words.

A Whisper segment can hold a long sentence that stays on screen for many seconds. With its
words' times (`Segment.words`), a segment becomes consecutive chunks of whole words: a chunk
ends at a sentence's end, and each sentence becomes the fewest chunks of at most `max_chars`
characters and `max_words` words (a single longer word is a chunk of its own), as even as
they can be, ending at a comma where that helps. Each chunk shows from its first word to its
last; a segment without words stays one caption (`assembly.captions_by_word`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

from domain.scene import Segment, Word

MAX_CHARS = 42
"""A caption line's usual limit (broadcast subtitles: 37 to 42 characters)."""
MAX_WORDS = 7

_CLOSERS = "\"'”’»)]」』"
_SENTENCE_END = frozenset(".!?…。！？")
_CLAUSE_END = frozenset(",;:，、；：—–")


def caption_chunks(
    segments: Sequence[Segment], max_chars: int = MAX_CHARS, max_words: int = MAX_WORDS
) -> tuple[Segment, ...]:
    """Each segment with words as consecutive, non-overlapping chunks of whole words, in
    order; each chunk from its first word's start to its last word's end (a single word
    longer than `max_chars` is a chunk of its own). Segments without words pass through."""
    if max_chars < 1 or max_words < 1:
        raise ValueError("max_chars and max_words must be at least 1")
    chunks: list[Segment] = []
    for segment in segments:
        words = [word for word in segment.words if word.text.strip()]
        if not words:
            chunks.append(segment)
            continue
        chunks.extend(_timed(_runs(words, max_chars, max_words)))
    return tuple(chunks)


def _text(words: Sequence[Word]) -> str:
    return "".join(word.text for word in words).strip()


def _ends_with(word: Word, marks: frozenset[str]) -> bool:
    text = word.text.strip().rstrip(_CLOSERS)
    return bool(text) and text[-1] in marks


def _runs(words: Sequence[Word], max_chars: int, max_words: int) -> list[list[Word]]:
    """The words in runs: broken after each sentence's end, each sentence balanced."""
    runs: list[list[Word]] = []
    sentence: list[Word] = []
    for index, word in enumerate(words):
        sentence.append(word)
        if _ends_with(word, _SENTENCE_END) or index == len(words) - 1:
            runs.extend(_balanced(sentence, max_chars, max_words))
            sentence = []
    return runs


def _balanced(words: Sequence[Word], max_chars: int, max_words: int) -> list[list[Word]]:
    """The fewest runs that fit (a longer single word alone), then the most even ones,
    preferring to end a run at a comma: a small line-breaking search over where runs end."""
    clause_bonus = (max_chars // 2) ** 2
    # best[i]: (runs, unevenness) of the best split of the first i words, and where its last
    # run starts.
    best: list[tuple[tuple[int, int], int]] = [((0, 0), 0)]
    for end in range(1, len(words) + 1):
        candidates: list[tuple[tuple[int, int], int]] = []
        for start in range(end - 1, -1, -1):
            run = words[start:end]
            length = len(_text(run))
            if len(run) > 1 and (len(run) > max_words or length > max_chars):
                break
            (count, spread), _ = best[start]
            bonus = clause_bonus if end < len(words) and _ends_with(run[-1], _CLAUSE_END) else 0
            candidates.append(((count + 1, spread + length * length - bonus), start))
        best.append(min(candidates))  # a single word is always a candidate
    runs: list[list[Word]] = []
    end = len(words)
    while end:
        start = best[end][1]
        runs.insert(0, list(words[start:end]))
        end = start
    return runs


def _timed(runs: Sequence[Sequence[Word]]) -> list[Segment]:
    """A caption per run, each from its first word to its last; starts kept in order and each
    ending no later than the next begins, should Whisper's word times overlap."""
    starts = list(accumulate((run[0].start_s for run in runs), max))
    chunks = []
    for index, run in enumerate(runs):
        end = max(run[-1].end_s, starts[index])
        if index + 1 < len(runs):
            end = min(end, starts[index + 1])
        chunks.append(Segment(starts[index], end, _text(run), tuple(run)))
    return chunks
