"""Every scene in its own language: a scene spoken in another language than the storyboard's
is read in its own, from its own evidence; a short scene of the storyboard's language stays in
it; a scene's `language:` decides; what Whisper invents never becomes a prompt.

Recordings are spoken by espeak-ng (`make test` installs it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from clients.services import load_engine
from clients.storage import CacheLocation
from clients.transcription.types import RawSegment, RawTranscription, TranscriptionEngine
from configs.settings import TranscriptionSettings
from domain.scene import Recording, SceneFailure, Transcript
from tasks.ingest import file_sha256, plan_storyboard
from tasks.language import LanguageChoice, cached_storyboard_language
from tasks.transcribe import transcribe_recordings
from testkit.fakes.engines import RememberingEngine
from tests.helpers import DEMO_DIR, recording, speak, write_wav

SETTINGS = TranscriptionSettings()
SPANISH = "Un león camina por la selva brumosa al amanecer."
GERMAN = (
    "Der alte Leuchtturmwärter steigt jeden Abend die Treppe hinauf, zündet die Lampe an "
    "und sieht die Schiffe im Sturm vorbeiziehen. Ein Löwe geht durch den Dschungel."
)
ITALIAN = (
    "Il vecchio guardiano del faro sale le scale ogni sera, accende la lampada e guarda "
    "passare le navi nella tempesta. Un leone cammina nella giungla."
)


@pytest.fixture(scope="module")
def engine(cache_dir: Path) -> TranscriptionEngine:
    return RememberingEngine(load_engine(SETTINGS, cache_dir / "models"))  # type: ignore[return-value]


@pytest.mark.slow
def test_scenes_in_other_languages_are_read_in_their_own(
    engine: TranscriptionEngine, tmp_path: Path
) -> None:
    """An English storyboard (its first speech English) with a 4-s Spanish, a 12-s German and
    an 11-s Italian scene, a silent one and a one-second English one ("number 11", which
    Whisper alone hears as another language)."""
    paths = [
        DEMO_DIR / "dawn.ogg",
        DEMO_DIR / "river.mp3",
        speak(tmp_path / "spanish.wav", SPANISH, voice="es", speed=105),
        speak(tmp_path / "german.wav", GERMAN, voice="de", speed=140),
        write_wav(tmp_path / "silence.wav", 2.0),
        speak(tmp_path / "eleven.wav", "number 11"),
        speak(tmp_path / "italian.wav", ITALIAN, voice="it", speed=140),
        DEMO_DIR / "night.ogg",
    ]
    scenes = [recording(path, order) for order, path in enumerate(paths, start=1)]
    results = transcribe_recordings(engine, scenes, SETTINGS)
    by_name = dict(zip([path.stem for path in paths], results, strict=True))
    assert all(isinstance(result, Transcript) for result in results), results
    languages = {name: t.language for name, t in by_name.items() if isinstance(t, Transcript)}
    assert languages == {
        "dawn": "en",
        "river": "en",
        "spanish": "es",
        "german": "de",
        "silence": "en",
        "eleven": "en",
        "italian": "it",
        "night": "en",
    }
    spanish, silence = by_name["spanish"], by_name["silence"]
    assert isinstance(spanish, Transcript) and isinstance(silence, Transcript)
    assert "selva" in spanish.text.lower() and spanish.english_text != spanish.text
    assert silence.no_speech and silence.language_probability is None, "nothing was measured"
    for name in ("spanish", "german", "italian", "dawn", "eleven"):
        measured = by_name[name]
        assert isinstance(measured, Transcript)
        probability = measured.language_probability
        assert probability is not None and 0.0 < probability < 1.0, (name, probability)


@pytest.mark.slow
def test_a_scenes_language_in_the_storyboard_file_decides(
    engine: TranscriptionEngine, tmp_path: Path
) -> None:
    """A 5-s German scene that Whisper hears as English, named German in storyboard.yaml."""
    folder = tmp_path / "board"
    folder.mkdir()
    (folder / "01_dawn.ogg").write_bytes((DEMO_DIR / "dawn.ogg").read_bytes())
    german = "Ein Löwe geht im Morgengrauen durch einen nebligen Dschungel."
    speak(folder / "02_morgen.wav", german, voice="de", speed=105)
    spec = {"scenes": [{"id": "02_morgen", "language": "de"}]}
    (folder / "storyboard.yaml").write_text(yaml.safe_dump(spec))
    plan = plan_storyboard(str(folder))
    assert {r.scene_id: r.language for r in plan.recordings} == {"01_dawn": None, "02_morgen": "de"}
    recordings = sorted(plan.recordings, key=lambda r: r.scene_id)
    dawn, morgen = transcribe_recordings(engine, recordings, SETTINGS)
    assert isinstance(dawn, Transcript) and isinstance(morgen, Transcript)
    assert (dawn.language, morgen.language) == ("en", "de")
    assert morgen.language_probability is None, "named, not measured: never a copied 1.0"


class _InventingEngine:
    """Whisper as it reads speech it cannot: the same words again and again, or a stock
    phrase of the videos it learnt from, unsure of both."""

    name, model_name, device, compute_type = "fake", "fake", "cpu", "int8"

    def __init__(self, text: str) -> None:
        self.text = text
        self.asked: list[dict[str, Any]] = []

    def transcribe(self, audio: Any, **options: Any) -> RawTranscription:
        self.asked.append(options)
        segment = RawSegment(0.0, 3.0, self.text, 0.01, -0.9)
        return RawTranscription("en", 0.99, (segment,))

    def detect_language(self, audio: Any) -> tuple[str, float]:
        return "en", 0.9

    def language_odds(self, audio: Any) -> tuple[tuple[str, float], ...]:
        return (("en", 0.9), ("fr", 0.05))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Un Marco le Vela Vela, Hacyan Hacyan, Hacyan Hacyan, Hacyan Hacyan, Hacyan", "loops"),
        (
            "If you have any questions, please let me know in the comment section below.",
            "stock phrase",
        ),
    ],
)
def test_an_invented_reading_fails_its_scene_and_its_cost_is_bounded(
    tmp_path: Path, text: str, reason: str
) -> None:
    engine = _InventingEngine(text)
    recordings = [recording(DEMO_DIR / "dawn.ogg", 1)]
    one_by_one = SETTINGS.model_copy(update={"pack_short_scenes": False})
    (result,) = transcribe_recordings(engine, recordings, one_by_one, LanguageChoice("en"))  # type: ignore[arg-type]
    assert isinstance(result, SceneFailure), result
    assert reason in result.reason and "\n" not in result.reason
    first, *again = [asked["bounds"] for asked in engine.asked]
    assert first.temperatures == SETTINGS.temperatures
    assert [bounds.temperatures for bounds in again] == [(0.0,)], "one unsampled reading more"
    for bounds in (first, *again):
        assert bounds.max_new_tokens is not None and bounds.max_new_tokens <= 224


def test_a_reading_in_the_storyboards_language_is_kept_when_nothing_was_invented(
    tmp_path: Path,
) -> None:
    engine = _InventingEngine("A lion walks through a misty jungle at dawn.")
    recordings = [recording(DEMO_DIR / "dawn.ogg", 1)]
    one_by_one = SETTINGS.model_copy(update={"pack_short_scenes": False})
    (result,) = transcribe_recordings(engine, recordings, one_by_one, LanguageChoice("en"))  # type: ignore[arg-type]
    assert isinstance(result, Transcript) and result.text.startswith("A lion")
    assert result.language_probability == 0.9, "the scene's own measure, not Whisper's 0.99"


def test_the_storyboard_language_is_heard_again_only_when_its_first_speech_changed(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Dawn, river and elephants hold the ten seconds of speech the language is heard in: a
    retake of a later scene reuses it, a retake of river or a new first scene does not."""

    def scene(name: str, order: int) -> Recording:
        path = DEMO_DIR / name
        return Recording(path.stem, order, path, path.as_uri(), file_sha256(path))

    cache = CacheLocation(tmp_path / "cache")
    cache.local.mkdir()
    (cache_dir / "models").mkdir(parents=True, exist_ok=True)
    (cache.local / "models").symlink_to(cache_dir / "models", target_is_directory=True)
    first_three = [scene("dawn.ogg", 1), scene("river.mp3", 2), scene("elephants.ogg", 3)]
    board = [*first_three, scene("storm.m4a", 4)]
    first, heard = cached_storyboard_language(board, SETTINGS, cache, None)
    assert first.code == "en" and heard is not None
    retake_of_a_later_scene = [*first_three, scene("night.ogg", 4)]
    again, heard = cached_storyboard_language(retake_of_a_later_scene, SETTINGS, cache, None)
    assert (again, heard) == (first, None), "heard again though its first speech is the same"
    retake_of_river = [board[0], scene("night.ogg", 2), *board[2:]]
    assert cached_storyboard_language(retake_of_river, SETTINGS, cache, None)[1] is not None
    short = [scene("dawn.ogg", 1)]
    assert cached_storyboard_language(short, SETTINGS, cache, None)[1] is not None
    longer = [*short, scene("elephants.ogg", 2)]
    assert cached_storyboard_language(longer, SETTINGS, cache, None)[1] is not None, (
        "a second scene adds to a first speech shorter than a detection reads"
    )
