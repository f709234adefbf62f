"""The openai-whisper engine, on weights converted from the bundled CTranslate2 model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clients.media.audio import decode_audio
from clients.services import load_engine
from clients.transcription.convert import openai_checkpoint, read_ctranslate2_model
from clients.transcription.models import resolve_model_dir
from clients.transcription.types import TranscriptionEngine
from configs.settings import TranscriptionSettings
from domain.scene import Transcript
from tasks.ingest import plan_storyboard
from tasks.transcribe import WHISPER_SAMPLE_RATE, transcribe_audio
from tests.helpers import DEMO_DIR, DEMO_WORDS, run_cli, word_error_rate, write_wav

pytestmark = pytest.mark.slow
SETTINGS = TranscriptionSettings(engine="openai-whisper")


@pytest.fixture(scope="module")
def engine(cache_dir: Path) -> TranscriptionEngine:
    return load_engine(SETTINGS, cache_dir / "models")


def test_ctranslate2_weights_map_onto_every_openai_whisper_parameter(cache_dir: Path) -> None:
    import whisper

    arrays = read_ctranslate2_model(resolve_model_dir("base", cache_dir / "models") / "model.bin")
    checkpoint = openai_checkpoint(arrays)
    assert checkpoint["dims"] == {
        "n_mels": 80,
        "n_audio_ctx": 1500,
        "n_audio_state": 512,
        "n_audio_head": 8,
        "n_audio_layer": 6,
        "n_vocab": 51865,
        "n_text_ctx": 448,
        "n_text_state": 512,
        "n_text_head": 8,
        "n_text_layer": 6,
    }
    model = whisper.Whisper(whisper.model.ModelDimensions(**checkpoint["dims"]))
    expected = model.state_dict()
    assert set(checkpoint["model_state_dict"]) == set(expected)
    for name, tensor in checkpoint["model_state_dict"].items():
        assert tensor.shape == expected[name].shape, name


def test_engine_is_loaded_once_and_runs_on_the_cpu(
    engine: TranscriptionEngine, cache_dir: Path
) -> None:
    assert load_engine(SETTINGS, cache_dir / "models") is engine
    assert (engine.name, engine.device, engine.compute_type) == ("openai-whisper", "cpu", "float32")


def test_demo_narrations_within_25_percent_wer(engine: TranscriptionEngine) -> None:
    plan = plan_storyboard(str(DEMO_DIR))
    picked = [r for r in plan.recordings if r.scene_id in {"dawn", "storm"}]
    hypotheses = [_transcribe(engine, r.path) for r in picked]
    assert all(t.language == "en" and not t.no_speech for t in hypotheses)
    reference = " ".join(DEMO_WORDS[r.scene_id] for r in picked)
    assert word_error_rate(reference, " ".join(t.text for t in hypotheses)) < 0.25


def _transcribe(engine: TranscriptionEngine, path: Path) -> Transcript:
    return transcribe_audio(engine, decode_audio(path, WHISPER_SAMPLE_RATE), SETTINGS, None)


def test_silence_is_no_speech(engine: TranscriptionEngine, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "quiet.wav", 3.0)
    transcript = _transcribe(engine, path)
    assert transcript.no_speech and transcript.text == ""


def test_transcribe_command_with_the_openai_engine(tmp_path: Path, cli_env: dict[str, str]) -> None:
    shutil.copy(DEMO_DIR / "night.ogg", tmp_path / "night.ogg")
    result = run_cli(["transcribe", str(tmp_path), "--engine", "openai-whisper"], cli_env, tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["language"] == "en" and "lion" in line["transcript"].lower()
