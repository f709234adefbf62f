from __future__ import annotations

from pathlib import Path

import pytest

from configs.settings import default_cache_dir, load_settings
from domain.errors import ConfigurationError


def test_defaults_load_and_match_the_documented_values() -> None:
    settings = load_settings()
    assert settings.transcription.model == "base"
    assert settings.transcription.vad_filter is True
    assert settings.generation.backend == "auto"
    assert (settings.assembly.width, settings.assembly.height) == (1024, 576)


def test_config_file_and_overrides_merge_key_by_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("generation:\n  concurrency: 2\nassembly:\n  fps: 12\n")
    settings = load_settings(config, {"assembly": {"captions": False}})
    assert settings.generation.concurrency == 2
    assert settings.generation.image_model == "sdxl"
    assert settings.assembly.fps == 12
    assert settings.assembly.captions is False


def test_unknown_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("assembly:\n  frames_per_second: 12\n")
    with pytest.raises(ConfigurationError, match=r"unknown key 'assembly.frames_per_second'"):
        load_settings(config)


def test_invalid_value_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("generation:\n  backend: midjourney\n")
    with pytest.raises(ConfigurationError, match=r"generation.backend"):
        load_settings(config)


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STORYBOARD_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("STORYBOARD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "storyboard"


@pytest.mark.parametrize("timeout_s", ["1.2", "2.9", "0"])
def test_a_read_timeout_the_gateways_hold_would_use_up_is_refused_naming_the_least(
    tmp_path: Path, timeout_s: str
) -> None:
    """The gateway holds a request at least 1 s; at 1.2 s every accepted job ended "outcome
    unknown" and a re-run paid for it again."""
    config = tmp_path / "config.yaml"
    config.write_text(f"generation:\n  request_timeout_s: {timeout_s}\n")
    with pytest.raises(
        ConfigurationError, match=r"request_timeout_s: .*greater than or equal to 3"
    ):
        load_settings(config)
    config.write_text("generation:\n  request_timeout_s: 3\n")
    assert load_settings(config).generation.request_timeout_s == 3.0
