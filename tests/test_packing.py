"""Which packed windows prove each word's scene (tasks/packing.py), on made-up Whisper output."""

from __future__ import annotations

from clients.transcription.types import RawSegment, RawTranscription, RawWord
from tasks.packing import verified_owners

SPANS = [(0.0, 1.0), (2.0, 3.2)]  # two scenes' speech, a second of silence apart


def segment(*words: tuple[float, float, str]) -> RawSegment:
    text = "".join(word for _, _, word in words)
    return RawSegment(words[0][0], words[-1][1], text, 0.0, -0.2, tuple(RawWord(*w) for w in words))


def owners(*segments: RawSegment) -> list[int] | None:
    found = verified_owners(RawTranscription("en", 1.0, segments), SPANS, lambda s: True)
    return None if found is None else [index for _, index in found]


def test_words_inside_each_scene_go_to_that_scene() -> None:
    first = segment((0.1, 0.4, " Number"), (0.4, 0.9, " 1"))
    second = segment((2.2, 2.6, " Number"), (2.6, 3.1, " 2"))
    assert owners(first, second) == [0, 1]


def test_a_word_in_the_silence_between_scenes_proves_nothing() -> None:
    drifted = segment((0.1, 0.4, " Number"), (0.4, 1.8, " 1"))
    assert owners(drifted, segment((2.2, 3.1, " two"))) is None


def test_a_segment_spanning_two_scenes_proves_nothing() -> None:
    assert owners(segment((0.1, 0.9, " Number"), (2.1, 3.1, " 2"))) is None


def test_a_scene_left_without_words_or_cut_short_proves_nothing() -> None:
    assert owners(segment((0.1, 0.9, " Number one"))) is None
    early_stop = segment((2.1, 2.3, " Number"))
    long_spans = [(0.0, 1.0), (2.0, 5.0)]
    raw = RawTranscription("en", 1.0, (segment((0.1, 0.9, " one")), early_stop))
    assert verified_owners(raw, long_spans, lambda s: True) is None


def test_more_words_than_a_person_can_say_proves_nothing() -> None:
    burst = segment(*((0.05 * i, 0.05 * i + 0.04, " la") for i in range(20)))
    assert owners(burst, segment((2.2, 3.1, " two"))) is None
