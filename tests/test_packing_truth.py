"""Transcripts belong to their scene: packed transcription gives each scene the words read from
that scene alone, and a storyboard is read in one language.

Recordings are spoken by espeak-ng (`make test` installs it), as the tester made them."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.services import load_engine
from clients.transcription.types import TranscriptionEngine
from configs.settings import TranscriptionSettings
from domain.scene import Recording, SceneFailure, Transcript
from tasks.language import LanguageChoice
from tasks.transcribe import transcribe_recordings
from testkit.fakes.engines import DoubtfulEngine, LoopingWhenSampledEngine, RememberingEngine
from tests.helpers import DEMO_DIR, recording, speak, word_error_rate, words, write_wav

pytestmark = pytest.mark.slow
PACKED = TranscriptionSettings()
ONE_BY_ONE = PACKED.model_copy(update={"pack_short_scenes": False})
NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
]


@pytest.fixture(scope="module")
def engine(cache_dir: Path) -> TranscriptionEngine:
    return RememberingEngine(load_engine(PACKED, cache_dir / "models"))  # type: ignore[return-value]


def numbers_in(text: str) -> list[int]:
    found = []
    for word in words(text):
        if word.isdigit():
            found.append(int(word))
        elif word in NUMBER_WORDS:
            found.append(NUMBER_WORDS.index(word))
    return found


def texts(results: list[Transcript | SceneFailure]) -> list[list[str]]:
    assert all(isinstance(result, Transcript) for result in results), results
    return [words(result.text) for result in results if isinstance(result, Transcript)]


@pytest.fixture(scope="module")
def twenty_scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Recording]:
    """`for i in $(seq 20); do espeak-ng -s 220 -w src/scene_$i.wav "number $i"; done`: a few
    windows' worth of one-second scenes."""
    folder = tmp_path_factory.mktemp("twenty")
    return [recording(speak(folder / f"scene_{i}.wav", f"number {i}"), i) for i in range(1, 21)]


def test_twenty_short_scenes_packed_read_each_scene_as_it_reads_alone(
    engine: TranscriptionEngine, twenty_scenes: list[Recording]
) -> None:
    packed = transcribe_recordings(engine, twenty_scenes, PACKED)
    alone = transcribe_recordings(engine, twenty_scenes, ONE_BY_ONE)
    for results in (packed, alone):
        silent = [r.scene_id for r, t in zip(twenty_scenes, results, strict=True) if t.no_speech]  # type: ignore[union-attr]
        assert not silent, f"scenes with clear speech came out no_speech: {silent}"
        assert all(t.language == "en" for t in results), [t.language for t in results]  # type: ignore[union-attr]
    # A packed window is decoded with its neighbours around each scene, so a marginal word
    # may come out otherwise than alone ("number 11" alone has read as "thank you very much",
    # and packed as "number 11"); but a number that is neither the scene's own nor what it
    # reads alone came from another scene.
    foreign = {
        scene.scene_id: (p, a)
        for number, scene, p, a in zip(
            range(1, 21), twenty_scenes, texts(packed), texts(alone), strict=True
        )
        if set(numbers_in(" ".join(p))) - {number} - set(numbers_in(" ".join(a)))
    }
    assert not foreign, f"packed scenes hold numbers of other scenes: {foreign}"
    # The base model mishears some of espeak's fast numbers alone too (9 as 1, 13 as 14): that
    # is the model's accuracy, and packing must not lose more of it than a scene or two.
    own_packed, own_alone = (
        sum(numbers_in(" ".join(t)) == [i] for i, t in enumerate(texts(results), start=1))
        for results in (packed, alone)
    )
    assert own_packed >= 15 and own_packed >= own_alone - 2, (own_packed, own_alone)
    shifted = [
        i for i, t in enumerate(texts(packed), start=1) if len(numbers_in(" ".join(t))) > 1 or not t
    ]
    assert not shifted, f"scenes holding more than their own number: {shifted}"


def test_clear_speech_is_speech_whatever_whispers_no_speech_guess(
    engine: TranscriptionEngine, twenty_scenes: list[Recording], tmp_path: Path
) -> None:
    """Whisper's no-speech guess for a clear one-second word sits near its threshold, and
    another processor's arithmetic tips it over: the VAD's evidence decides instead. The
    doubtful engine reads the same words, every one of them guessed silent and unsure."""
    doubtful: TranscriptionEngine = DoubtfulEngine(engine)  # type: ignore[assignment]
    scenes = twenty_scenes[8:14]
    silence = recording(write_wav(tmp_path / "silence.wav", 2.0), 40)
    english = LanguageChoice("en")
    for settings in (PACKED, ONE_BY_ONE):
        results = transcribe_recordings(doubtful, [*scenes, silence], settings, english)
        *spoken, silent = results
        assert [t.no_speech for t in spoken] == [False] * len(scenes), spoken  # type: ignore[union-attr]
        assert all(texts(spoken)), spoken
        assert isinstance(silent, Transcript) and silent.no_speech and silent.text == ""
    without_vad = ONE_BY_ONE.model_copy(update={"vad_filter": False})
    (whispers_own,) = transcribe_recordings(doubtful, scenes[:1], without_vad, english)
    assert isinstance(whispers_own, Transcript) and whispers_own.no_speech, (
        "without the VAD, Whisper's own no-speech rule decides"
    )


def test_mixed_lengths_packed_match_one_by_one(engine: TranscriptionEngine, tmp_path: Path) -> None:
    spoken = {
        "one": "number one",
        "short": "A red kite.",
        "long": "The old lighthouse keeper climbs the spiral stairs every evening to light "
        "the great lamp, while the storm throws waves against the rocks below.",
        "two": "number two",
    }
    paths = [speak(tmp_path / f"{name}.wav", text, speed=175) for name, text in spoken.items()]
    paths.insert(1, DEMO_DIR / "dawn.ogg")
    paths.insert(4, DEMO_DIR / "night.ogg")
    scenes = [recording(path, order) for order, path in enumerate(paths, start=1)]
    packed = texts(transcribe_recordings(engine, scenes, PACKED))
    alone = texts(transcribe_recordings(engine, scenes, ONE_BY_ONE))
    for scene, p, a in zip(scenes, packed, alone, strict=True):
        # Packed windows are decoded greedily, so a word may differ; never a scene's worth.
        assert word_error_rate(" ".join(a), " ".join(p)) <= 0.34, (scene.scene_id, p, a)
    by_name = {scene.scene_id: text for scene, text in zip(scenes, packed, strict=True)}
    assert "lion" in by_name["dawn"] and "stars" in by_name["night"]
    assert "spiral" in by_name["long"] and "kite" in by_name["short"]


def test_a_sampled_reading_that_loops_gives_way_to_the_unsampled_one(
    engine: RememberingEngine, twenty_scenes: list[Recording]
) -> None:
    """Whisper samples when its first reading fails its own tests, and a sampled reading may
    loop where the first did not: the scene keeps the first, whether packed or alone."""
    english = LanguageChoice("en")
    unsampled = ONE_BY_ONE.model_copy(update={"temperatures": (0.0,)})
    first = transcribe_recordings(engine, twenty_scenes[:8], unsampled, english)
    readable = [s for s, t in zip(twenty_scenes, first, strict=False) if isinstance(t, Transcript)]
    scenes = readable[:4]
    assert len(scenes) >= 2, first
    expected = texts(transcribe_recordings(engine, scenes, unsampled, english))
    looping = LoopingWhenSampledEngine(engine.engine)
    looping.answers = engine.answers
    for settings in (PACKED, ONE_BY_ONE):
        read = texts(transcribe_recordings(looping, scenes, settings, english))
        assert not any("55" in scene for scene in read), read
        if settings is ONE_BY_ONE:
            assert read == expected


def test_a_one_second_scene_is_read_in_the_storyboards_language(
    engine: TranscriptionEngine, twenty_scenes: list[Recording]
) -> None:
    eleven = twenty_scenes[10]
    (alone,) = transcribe_recordings(engine, [eleven], ONE_BY_ONE, LanguageChoice(None))
    assert isinstance(alone, Transcript) and alone.language != "en", "Whisper alone is unsure"
    storyboard = [recording(DEMO_DIR / "dawn.ogg", 0), eleven]
    for settings in (PACKED, ONE_BY_ONE):
        results = transcribe_recordings(engine, storyboard, settings)
        assert [t.language for t in results] == ["en", "en"]  # type: ignore[union-attr]


def test_a_long_scene_in_another_language_keeps_its_own_and_language_overrides(
    engine: TranscriptionEngine, tmp_path: Path
) -> None:
    german = speak(
        tmp_path / "berlin.wav",
        "Am Morgen gehen die Kinder durch den Park zur Schule, und die Sonne scheint "
        "warm auf die alten Baeume am Ufer des Flusses.",
        voice="de",
        speed=150,
    )
    storyboard = [recording(DEMO_DIR / "dawn.ogg", 0), recording(german, 1)]
    results = transcribe_recordings(engine, storyboard, PACKED)
    assert [t.language for t in results] == ["en", "de"]  # type: ignore[union-attr]
    forced = transcribe_recordings(engine, storyboard, PACKED, LanguageChoice("en", True))
    assert [t.language for t in forced] == ["en", "en"]  # type: ignore[union-attr]
