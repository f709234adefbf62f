"""The checks every run passes before anything is paid for (shared by the command line and the
flow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.settings import Settings
from domain.errors import ConfigurationError, StorageError
from tasks.ingest import resolve_source
from tasks.preflight import check_only, check_run, check_target
from tests.helpers import write_wav


def _storyboard(folder: Path, yaml_text: str = "") -> Path:
    folder.mkdir()
    write_wav(folder / "dawn.wav", 0.5)
    write_wav(folder / "night.wav", 0.5)
    if yaml_text:
        (folder / "storyboard.yaml").write_text(yaml_text)
    return folder


def test_a_good_storyboard_passes_and_auto_means_draft_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NVIDIA_API_KEY", raising=False)
    source = resolve_source(str(_storyboard(tmp_path / "s")))
    assert check_run(source, "auto", ["night"], Settings()) == "draft"


def test_only_must_name_scenes_of_the_storyboard(tmp_path: Path) -> None:
    source = resolve_source(str(_storyboard(tmp_path / "s")))
    with pytest.raises(ConfigurationError, match="no scene called dusk"):
        check_run(source, "draft", ["dusk"], Settings())
    check_only(["a", "b"], ["a"], "here")


def test_a_missing_subject_is_refused_before_any_work(tmp_path: Path) -> None:
    folder = _storyboard(tmp_path / "s", "subjects:\n  - {path: leo.safetensors, trigger: sks}\n")
    with pytest.raises(ConfigurationError, match=r"subject weights leo\.safetensors not found"):
        check_run(resolve_source(str(folder)), "draft", [], Settings())
    (folder / "leo.safetensors").write_bytes(b"weights")
    assert check_run(resolve_source(str(folder)), "draft", [], Settings()) == "draft"


def test_a_backend_that_cannot_run_here_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NVIDIA_API_KEY", raising=False)
    source = resolve_source(str(_storyboard(tmp_path / "s")))
    with pytest.raises(ConfigurationError, match="NVIDIA_API_KEY"):
        check_run(source, "nvidia", [], Settings())
    with pytest.raises(ConfigurationError, match=r"generation\.local\.image_model"):
        check_run(source, "local", [], Settings())
    missing = Settings.model_validate({"generation": {"local": {"image_model": "./nowhere"}}})
    with pytest.raises(ConfigurationError, match="nowhere"):
        check_run(source, "local", [], missing)


def test_a_target_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    with pytest.raises(StorageError):
        check_target(str(in_the_way / "out"))
    check_target(str(tmp_path / "out"))
    assert (tmp_path / "out").is_dir()
