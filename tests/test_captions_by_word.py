"""Captions by word (`assembly.captions_by_word`): Whisper's word times kept on the segments,
cached with them, and segments cut into short captions that follow the spoken words."""

from __future__ import annotations

from dataclasses import asdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from clients.cache import ContentCache
from clients.services import load_engine
from clients.transcription.types import RawSegment, RawTranscription, RawWord
from configs.settings import AssemblySettings, Settings, TranscriptionSettings, load_settings
from domain.scene import (
    GeneratedMedia,
    Recording,
    SceneOutcome,
    SceneStatus,
    Segment,
    Transcript,
    Word,
)
from tasks import transcribe as transcribe_module
from tasks.assembly.captions import caption_chunks
from tasks.assembly.timeline import active_caption, scene_cut
from tasks.ingest import plan_storyboard
from tasks.language import LanguageChoice
from tasks.packing import SpeechClip, transcribe_pack
from tasks.transcribe import (
    CACHE_NAMESPACE,
    WHISPER_SAMPLE_RATE,
    cached_transcripts,
    transcribe_audio,
    transcribe_recordings,
)
from tests.helpers import DEMO_DIR, PROJECT_ROOT

LONG = (
    "At dawn, a lion walks slowly through the misty jungle, and the birds begin to sing. "
    "Then everything is quiet again for a long while."
)
OLD_DEFAULT_KEY = "855fea15dca778b9ce5c38d7f370e3aac9f18b52fccd8fa9379bf242894d7f46"
"""The transcript cache key of `_recording()` read in English with the default settings, as
computed since each scene's language is chosen from its own evidence (issue 29): it must not
change while `transcription.word_timestamps` is off."""
BEFORE_SCENE_LANGUAGES_KEY = "1e0352f433f006fad3c8736f6a804029ea375f291f2dfe292b2e97089d47cd95"
"""The same key before issue 29, when a short scene was always read in the storyboard's
language: what was cached under it is read again."""


def _spoken(text: str, start: float = 0.0, step: float = 0.4) -> Segment:
    """A segment of `text` with Whisper-like words (leading spaces), one every `step` s."""
    words = tuple(
        Word(start + i * step, start + i * step + step * 0.75, f" {said}")
        for i, said in enumerate(text.split())
    )
    return Segment(words[0].start_s, words[-1].end_s, text, words)


# caption_chunks


def test_a_long_segment_becomes_chunks_that_follow_its_words() -> None:
    segment = _spoken(LONG)
    chunks = caption_chunks([segment])
    assert len(chunks) > 3
    assert " ".join(chunk.text for chunk in chunks) == LONG
    assert [word for chunk in chunks for word in chunk.words] == list(segment.words)
    for chunk in chunks:
        assert chunk.start_s == chunk.words[0].start_s and chunk.end_s == chunk.words[-1].end_s
        assert len(chunk.text) <= 42 and len(chunk.words) <= 7
        assert chunk.text == chunk.text.strip() and "  " not in chunk.text
    for before, after in pairwise(chunks):
        assert before.start_s < after.start_s and before.end_s <= after.start_s


def test_chunks_respect_max_chars_and_max_words() -> None:
    segment = _spoken(LONG)
    for max_chars, max_words in ((20, 7), (42, 3), (12, 12)):
        chunks = caption_chunks([segment], max_chars=max_chars, max_words=max_words)
        assert all(len(c.text) <= max_chars and len(c.words) <= max_words for c in chunks)
        assert " ".join(chunk.text for chunk in chunks) == LONG


def test_a_sentence_end_always_ends_a_chunk() -> None:
    chunks = caption_chunks([_spoken("The lion roars. It runs! Where? Home.")])
    assert [chunk.text for chunk in chunks] == ["The lion roars.", "It runs!", "Where?", "Home."]
    quoted = caption_chunks([_spoken('He said "stop." Then silence.')])
    assert [chunk.text for chunk in quoted] == ['He said "stop."', "Then silence."]


def test_a_sentence_is_split_evenly_and_at_a_comma_where_it_can_be() -> None:
    (first, second) = caption_chunks([_spoken("one two three four five six seven eight")])
    assert (first.text, second.text) == ("one two three four", "five six seven eight")
    chunks = caption_chunks([_spoken(LONG)])
    assert any(chunk.text.endswith("jungle,") for chunk in chunks)


def test_segments_without_words_pass_through_unchanged() -> None:
    plain = [Segment(0.0, 4.0, "A lion walks."), Segment(4.5, 9.0, "   ")]
    assert caption_chunks(plain) == tuple(plain)
    blank_words = Segment(0.0, 1.0, "", (Word(0.0, 0.5, " "),))
    mixed = [plain[0], _spoken("Birds sing at dawn.", start=5.0), blank_words]
    chunks = caption_chunks(mixed)
    assert chunks[0] is plain[0] and chunks[-1] is blank_words
    assert [chunk.text for chunk in chunks[1:-1]] == ["Birds sing at dawn."]
    assert caption_chunks([]) == ()


def test_a_single_overlong_word_is_a_chunk_of_its_own() -> None:
    long_word = "Supercalifragilisticexpialidocious-antidisestablishmentarianism"
    chunks = caption_chunks([_spoken(f"a {long_word} b c")], max_chars=20)
    assert [chunk.text for chunk in chunks] == ["a", long_word, "b c"]
    (alone,) = caption_chunks([_spoken(long_word)], max_chars=10)
    assert alone.text == long_word


def test_overlapping_word_times_give_ordered_chunks_that_do_not_overlap() -> None:
    words = (
        Word(0.0, 1.2, " One."),
        Word(1.0, 1.5, " Two."),  # starts before the word before it ends
        Word(0.9, 2.0, " Three."),  # starts before the one before it
    )
    chunks = caption_chunks([Segment(0.0, 2.0, "One. Two. Three.", words)])
    assert [chunk.text for chunk in chunks] == ["One.", "Two.", "Three."]
    starts = [chunk.start_s for chunk in chunks]
    assert starts == sorted(starts)
    for before, after in pairwise(chunks):
        assert before.start_s <= before.end_s <= after.start_s


def test_words_without_spaces_are_joined_as_written() -> None:
    words = (Word(0.0, 0.3, "猫"), Word(0.3, 0.6, "が"), Word(0.6, 0.9, "歩く。"))
    (chunk,) = caption_chunks([Segment(0.0, 0.9, "猫が歩く。", words)])
    assert chunk.text == "猫が歩く。"


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        caption_chunks([_spoken("a b")], max_chars=0)


# the video's captions


def _outcome(segments: tuple[Segment, ...], tmp_path: Path) -> SceneOutcome:
    recording = Recording("dawn", 1, tmp_path / "dawn.wav", "dawn.wav", "0" * 64)
    transcript = Transcript("en", 1.0, LONG, LONG, segments, 10.0, False, 1.0)
    media = GeneratedMedia(tmp_path / "image.png", tmp_path / "clip.mp4", 1, "sdxl", "draft")
    return SceneOutcome(recording, SceneStatus.OK, transcript, "a lion", 1, media)


def test_scene_cut_shows_chunks_by_word_only_when_asked(tmp_path: Path) -> None:
    segment = _spoken(LONG)
    outcome = _outcome((segment,), tmp_path)
    assert scene_cut(outcome).segments == (segment,)
    cut = scene_cut(outcome, by_word=True)
    assert cut.segments == caption_chunks([segment]) and len(cut.segments) > 1
    # the caption on screen changes with the words spoken
    for chunk in cut.segments:
        shown = active_caption(cut.segments, (chunk.start_s + chunk.end_s) / 2)
        assert shown is not None and cut.segments[shown] == chunk
    placeholder = scene_cut(
        SceneOutcome(outcome.recording, SceneStatus.FILTERED, outcome.transcript), by_word=True
    )
    assert placeholder.segments == cut.segments


# settings


def test_captions_by_word_is_off_by_default_and_documented_so() -> None:
    documented = yaml.safe_load((PROJECT_ROOT / "configs" / "defaults.yaml").read_text())
    assert documented["assembly"]["captions_by_word"] is False
    assert documented["transcription"]["word_timestamps"] is False
    settings = Settings()
    assert not settings.assembly.captions_by_word and not settings.transcription.word_timestamps
    dumped = settings.model_dump(mode="json")
    assert dumped["assembly"]["captions_by_word"] == documented["assembly"]["captions_by_word"]
    assert (
        dumped["transcription"]["word_timestamps"] == documented["transcription"]["word_timestamps"]
    )


def test_captions_by_word_asks_transcription_for_word_times() -> None:
    by_file = load_settings(None, {"assembly": {"captions_by_word": True}})
    assert by_file.transcription.word_timestamps
    by_object = Settings(
        assembly=AssemblySettings(captions_by_word=True),
        transcription=TranscriptionSettings(beam_size=3),
    )
    assert by_object.transcription.word_timestamps and by_object.transcription.beam_size == 3
    # as Prefect passes the flow's parameter: dumped, then validated again
    assert Settings.model_validate(by_file.model_dump(mode="json")) == by_file
    # word times on their own, without captions by word
    alone = load_settings(None, {"transcription": {"word_timestamps": True}})
    assert alone.transcription.word_timestamps and not alone.assembly.captions_by_word
    assert not load_settings(None, {"assembly": {"captions": False}}).transcription.word_timestamps


# transcription: word times asked for, cached, keyed


class _WordEngine:
    """An engine without a model: one segment with words, and the options it was asked for."""

    name, model_name, device, compute_type = "fake", "fake", "cpu", "int8"

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def transcribe(self, audio: Any, **options: Any) -> RawTranscription:
        self.asked.append(options)
        words = (RawWord(0.5, 0.9, " A"), RawWord(0.9, 1.4, " lion"), RawWord(1.4, 2.0, " roars."))
        segment = RawSegment(0.5, 2.0, "A lion roars.", 0.01, -0.2, words)
        return RawTranscription("en", 0.99, (segment,))

    def detect_language(self, audio: Any) -> tuple[str, float]:
        return "en", 0.99

    def language_odds(self, audio: Any) -> tuple[tuple[str, float], ...]:
        return (("en", 0.99),)


def test_an_unpacked_scene_is_transcribed_with_word_times_when_asked() -> None:
    audio = np.zeros(3 * WHISPER_SAMPLE_RATE, np.float32)
    engine = _WordEngine()
    on = transcribe_audio(engine, audio, TranscriptionSettings(word_timestamps=True), "en")
    assert engine.asked[-1]["word_timestamps"] is True
    (segment,) = on.segments
    assert segment.words == (
        Word(0.5, 0.9, " A"),
        Word(0.9, 1.4, " lion"),
        Word(1.4, 2.0, " roars."),
    )
    transcribe_audio(engine, audio, TranscriptionSettings(), "en")
    assert engine.asked[-1]["word_timestamps"] is False


def _recording() -> Recording:
    return Recording("dawn", 1, Path("dawn.wav"), "dawn.wav", "0" * 64)


def _transcript_with_words() -> Transcript:
    segments = (_spoken("A lion walks."), _spoken("Birds sing.", start=2.0))
    return Transcript(
        "en",
        0.99,
        "A lion walks. Birds sing.",
        "A lion walks. Birds sing.",
        segments,
        3.5,
        False,
        0.8,
    )


def test_transcripts_are_cached_with_their_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _transcript_with_words()
    monkeypatch.setattr(transcribe_module, "load_engine", lambda *args: None)
    monkeypatch.setattr(transcribe_module, "transcribe_recordings", lambda *args: [made])
    cache, settings = ContentCache(tmp_path / "cache"), TranscriptionSettings(word_timestamps=True)
    language = LanguageChoice("en")
    (first,) = cached_transcripts(cache, [_recording()], settings, tmp_path, language)
    (second,) = cached_transcripts(cache, [_recording()], settings, tmp_path, language)
    assert isinstance(first, Transcript) and isinstance(second, Transcript)
    assert not first.from_cache and second.from_cache
    assert second.segments == made.segments and second.segments[0].words


def test_a_transcript_cached_before_words_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transcribe_module, "load_engine", lambda *args: pytest.fail("no cache"))
    cache, language = ContentCache(tmp_path / "cache"), LanguageChoice("en")
    old = {
        "language": "en",
        "language_probability": 0.99,
        "text": "A lion walks.",
        "english_text": "A lion walks.",
        "segments": [{"start_s": 0.0, "end_s": 1.5, "text": "A lion walks."}],
        "audio_duration_s": 2.0,
        "no_speech": False,
        "seconds": 0.5,
        "from_cache": False,
    }
    cache.put_json(CACHE_NAMESPACE, OLD_DEFAULT_KEY, old)
    (loaded,) = cached_transcripts(
        cache, [_recording()], TranscriptionSettings(), tmp_path, language
    )
    assert isinstance(loaded, Transcript) and loaded.from_cache
    assert loaded.segments == (Segment(0.0, 1.5, "A lion walks."),)
    assert loaded.segments[0].words == ()


def test_a_transcript_read_before_scenes_had_their_own_language_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _transcript_with_words()
    monkeypatch.setattr(transcribe_module, "load_engine", lambda *args: None)
    monkeypatch.setattr(transcribe_module, "transcribe_recordings", lambda *args: [made])
    cache, language = ContentCache(tmp_path / "cache"), LanguageChoice("en")
    older = {**asdict(made), "text": "Un Marco le Vela Vela", "from_cache": False}
    cache.put_json(CACHE_NAMESPACE, BEFORE_SCENE_LANGUAGES_KEY, older)
    (again,) = cached_transcripts(
        cache, [_recording()], TranscriptionSettings(), tmp_path, language
    )
    assert isinstance(again, Transcript) and not again.from_cache and again.text == made.text


def test_a_transcript_an_older_rule_called_silent_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the VAD decided (issue 27), a clear one-second word could be cached as no
    speech on one processor; it is transcribed again, and cached under the new rule."""
    made = _transcript_with_words()
    monkeypatch.setattr(transcribe_module, "load_engine", lambda *args: None)
    monkeypatch.setattr(transcribe_module, "transcribe_recordings", lambda *args: [made])
    cache, language = ContentCache(tmp_path / "cache"), LanguageChoice("en")
    silent = {
        "language": "en",
        "language_probability": 0.5,
        "text": "",
        "english_text": "",
        "segments": [],
        "audio_duration_s": 1.0,
        "no_speech": True,
        "seconds": 0.5,
        "from_cache": False,
    }
    cache.put_json(CACHE_NAMESPACE, OLD_DEFAULT_KEY, silent)
    (again,) = cached_transcripts(
        cache, [_recording()], TranscriptionSettings(), tmp_path, language
    )
    assert isinstance(again, Transcript) and not again.from_cache and not again.no_speech
    (kept,) = cached_transcripts(cache, [_recording()], TranscriptionSettings(), tmp_path, language)
    assert isinstance(kept, Transcript) and kept.from_cache and kept.text == made.text


def test_the_cache_key_changes_only_when_word_times_are_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _transcript_with_words()
    monkeypatch.setattr(transcribe_module, "load_engine", lambda *args: None)
    monkeypatch.setattr(transcribe_module, "transcribe_recordings", lambda *args: [made])
    language = LanguageChoice("en")
    off, on = ContentCache(tmp_path / "off"), ContentCache(tmp_path / "on")
    cached_transcripts(off, [_recording()], TranscriptionSettings(), tmp_path, language)
    cached_transcripts(
        on, [_recording()], TranscriptionSettings(word_timestamps=True), tmp_path, language
    )
    assert off.get_json(CACHE_NAMESPACE, OLD_DEFAULT_KEY) is not None, "off: the key is unchanged"
    assert on.get_json(CACHE_NAMESPACE, OLD_DEFAULT_KEY) is None, "on: another key"
    by_word = load_settings(None, {"assembly": {"captions_by_word": True}}).transcription
    again = cached_transcripts(on, [_recording()], by_word, tmp_path, language)
    assert isinstance(again[0], Transcript) and again[0].from_cache


# a real transcription, with the bundled base weights


@pytest.mark.slow
def test_real_word_times_lie_inside_their_segments(cache_dir: Path) -> None:
    settings = TranscriptionSettings(word_timestamps=True, pack_short_scenes=False)
    engine = load_engine(settings, cache_dir / "models")
    dawn = [r for r in plan_storyboard(str(DEMO_DIR)).recordings if r.scene_id == "dawn"]
    (transcript,) = transcribe_recordings(engine, dawn, settings, LanguageChoice("en"))
    assert isinstance(transcript, Transcript) and transcript.segments
    for segment in transcript.segments:
        assert segment.words
        assert "".join(word.text for word in segment.words).strip() == segment.text
        for word in segment.words:
            assert segment.start_s - 0.01 <= word.start_s <= word.end_s <= segment.end_s + 0.01
    chunks = caption_chunks(transcript.segments, max_chars=20)
    assert len(chunks) > len(transcript.segments)
    assert all(len(chunk.text) <= 20 or len(chunk.words) == 1 for chunk in chunks)


class _PackEngine:
    """An engine without a model that hears one segment in each of two packed scenes."""

    name, model_name, device, compute_type = "fake", "fake", "cpu", "int8"

    def transcribe(self, audio: Any, **options: Any) -> RawTranscription:
        assert options["word_timestamps"] is True
        first = (RawWord(0.2, 0.8, " Lions"), RawWord(0.8, 1.9, " roar."))
        second = (RawWord(3.2, 3.9, " Birds"), RawWord(3.9, 4.8, " sing."))
        return RawTranscription(
            "en",
            0.99,
            (
                RawSegment(0.2, 1.9, "Lions roar.", 0.01, -0.2, first),
                RawSegment(3.2, 4.8, "Birds sing.", 0.01, -0.2, second),
            ),
        )

    def detect_language(self, audio: Any) -> tuple[str, float]:
        return "en", 0.99

    def language_odds(self, audio: Any) -> tuple[tuple[str, float], ...]:
        return (("en", 0.99),)


def test_packed_scenes_keep_their_words_on_their_own_timelines() -> None:
    two_seconds = np.zeros(2 * WHISPER_SAMPLE_RATE, np.float32)
    # each clip's speech began 0.5 s into its recording
    pack = [SpeechClip(key, two_seconds, [(0.0, 2.0, 0.5)]) for key in (0, 1)]
    packed = transcribe_pack(_PackEngine(), pack, TranscriptionSettings(), "en", lambda s: True)
    assert packed is not None
    (lions,) = packed[0].segments
    (birds,) = packed[1].segments
    assert [(w.start_s, w.end_s, w.text) for w in birds.words] == [
        (pytest.approx(0.7), pytest.approx(1.4), " Birds"),
        (pytest.approx(1.4), pytest.approx(2.3), " sing."),
    ]
    assert (birds.start_s, birds.end_s) == (birds.words[0].start_s, birds.words[-1].end_s)
    assert lions.text == "Lions roar." and lions.words[0].start_s == pytest.approx(0.7)
