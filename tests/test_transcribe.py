"""Real transcription with the bundled multilingual base weights (no mocks, no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clients.cache import ContentCache
from clients.errors import AudioError, ConfigurationError
from clients.whisper import (
    FasterWhisperEngine,
    load_engine,
    resolve_model_dir,
    select_compute_type,
    select_device,
)
from configs.settings import TranscriptionSettings
from tasks.ingest import plan_storyboard
from tasks.scene import Recording
from tasks.transcribe import cached_transcription, transcribe_recording
from tests.conftest import DEMO_DIR, DEMO_WORDS, write_wav
from tests.wer import word_error_rate

pytestmark = pytest.mark.slow
SETTINGS = TranscriptionSettings()


@pytest.fixture(scope="module")
def engine(cache_dir: Path) -> FasterWhisperEngine:
    return load_engine(SETTINGS, cache_dir / "models")


def _recording(path: Path) -> Recording:
    return Recording(path.stem, 1, path, path.as_uri(), path.stem, path.stat().st_size)


def test_bundled_base_weights_are_joined_once(cache_dir: Path) -> None:
    first = resolve_model_dir("base", cache_dir / "models")
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert resolve_model_dir("base", cache_dir / "models") == first
    assert (first / "model.bin").stat().st_mtime_ns == stamp
    assert {p.name for p in first.iterdir()} >= {"model.bin", "config.json", "tokenizer.json"}


def test_engine_is_loaded_once_per_process(engine: FasterWhisperEngine, cache_dir: Path) -> None:
    assert load_engine(SETTINGS, cache_dir / "models") is engine


def test_demo_narrations_are_transcribed_within_25_percent_wer(
    engine: FasterWhisperEngine,
) -> None:
    plan = plan_storyboard(str(DEMO_DIR))
    references, hypotheses = [], []
    for recording in plan.recordings:
        transcript = transcribe_recording(engine, recording, SETTINGS)
        assert transcript.language == "en"
        assert not transcript.no_speech
        assert transcript.segments and transcript.segments[0].start_s < 1.0
        references.append(DEMO_WORDS[recording.scene_id])
        hypotheses.append(transcript.text)
    assert word_error_rate(" ".join(references), " ".join(hypotheses)) < 0.25


def test_silence_is_no_speech_not_a_hallucination(
    engine: FasterWhisperEngine, tmp_path: Path
) -> None:
    transcript = transcribe_recording(
        engine, _recording(write_wav(tmp_path / "s.wav", 3.0)), SETTINGS
    )
    assert transcript.no_speech
    assert transcript.text == "" and transcript.segments == ()
    assert transcript.audio_duration_s == pytest.approx(3.0, abs=0.05)


def test_low_noise_is_no_speech(engine: FasterWhisperEngine, tmp_path: Path) -> None:
    import wave

    path = tmp_path / "hiss.wav"
    noise = np.random.default_rng(1).normal(0, 0.01, 16_000 * 3)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((noise * 32767).astype("<i2").tobytes())
    assert transcribe_recording(engine, _recording(path), SETTINGS).no_speech


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"this is a text memo, not audio" * 20, "not a readable audio file")],
)
def test_unreadable_recordings_raise_one_line_audio_errors(
    engine: FasterWhisperEngine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "memo.mp3"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as caught:
        transcribe_recording(engine, _recording(path), SETTINGS)
    assert "\n" not in str(caught.value)


def test_transcripts_are_cached_by_audio_content(tmp_path: Path, cache_dir: Path) -> None:
    cache = ContentCache(tmp_path / "cache")
    (recording,) = [r for r in plan_storyboard(str(DEMO_DIR)).recordings if r.scene_id == "dawn"]
    models = cache_dir / "models"
    first = cached_transcription(cache, recording, SETTINGS, models, None)
    second = cached_transcription(cache, recording, SETTINGS, models, None)
    assert not first.from_cache and second.from_cache
    assert second.text == first.text and second.segments == first.segments


def test_device_and_compute_type_selection_for_cuda_and_cpu() -> None:
    assert select_device("auto", cuda_devices=1) == "cuda"
    assert select_device("auto", cuda_devices=0) == "cpu"
    assert select_compute_type("auto", "cuda") == "float16"
    assert select_compute_type("auto", "cpu") == "int8"
    assert select_compute_type("int8_float16", "cuda") == "int8_float16"
    with pytest.raises(ConfigurationError, match="no CUDA device"):
        select_device("cuda", cuda_devices=0)
