"""A storyboard file is untrusted input (issue 28): its `settings:` may change how the video
looks and sounds, may only tighten the safety screen and approval, and may never name a
location, a service or a limit of the operator's machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from configs.settings import Settings, apply_storyboard_settings
from configs.storyboard_policy import STORYBOARD_POLICY, policy_of
from domain.errors import ConfigurationError
from tests.helpers import copy_demo_recordings, run_cli

WHERE = "storyboard.yaml"


def leaf_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from leaf_paths(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_every_setting_is_classified_and_every_entry_is_a_setting() -> None:
    paths = set(leaf_paths(Settings))
    unclassified = sorted(path for path in paths if policy_of(path) is None)
    assert not unclassified, f"decide what a storyboard may do with: {unclassified}"
    stale = [
        entry
        for entry in STORYBOARD_POLICY
        if not any(path == entry or path.startswith(f"{entry}.") for path in paths)
    ]
    assert not stale, f"the table names settings that do not exist: {stale}"


@pytest.mark.parametrize(
    ("requested", "named"),
    [
        ({"cache_dir": "/tmp/elsewhere"}, "settings.cache_dir"),
        ({"shared_cache": "s3://evil/stolen/"}, "settings.shared_cache"),
        ({"safety": {"blocklist_file": "/etc/passwd"}}, "settings.safety.blocklist_file"),
        ({"generation": {"local": {"image_model": "/models/x"}}}, "generation.local.image_model"),
        ({"generation": {"requests_per_minute": 10_000}}, "generation.requests_per_minute"),
        ({"watch": {"settle_s": 0}}, "settings.watch.settle_s"),
        ({"studio": {"max_upload_mb": 2000}}, "settings.studio.max_upload_mb"),
        ({"dask": "anything"}, "settings.dask"),
        ({"transcription": {"model": "./weights"}}, "transcription.model"),
    ],
)
def test_refused_keys_are_one_line_naming_the_key(requested: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_storyboard_settings(Settings(), requested, WHERE)
    message = str(caught.value)
    assert named in message and "--config" in message and "\n" not in message


def test_the_safety_screen_and_approval_are_only_tightened() -> None:
    team = Settings.model_validate(
        {"safety": {"enabled": "auto", "threshold": 0.8, "blocklist": ["gore"]}}
    )
    for loosened in (
        {"safety": {"enabled": "off"}},
        {"safety": {"threshold": 0.95}},
        {"safety": {"classifier": False}},
    ):
        with pytest.raises(ConfigurationError, match="may only"):
            apply_storyboard_settings(team, loosened, WHERE)
    tightened = apply_storyboard_settings(
        team,
        {
            "safety": {"enabled": "on", "threshold": 0.5, "blocklist": ["dragon"]},
            "generation": {"approve_images": True},
        },
        WHERE,
    )
    assert tightened.safety.enabled == "on" and tightened.safety.threshold == 0.5
    assert tightened.safety.blocklist == ("gore", "dragon"), "added to, never replaced"
    assert tightened.generation.approve_images
    asking = team.model_copy(update={"generation": tightened.generation})
    with pytest.raises(ConfigurationError, match="may only turn approval on"):
        apply_storyboard_settings(asking, {"generation": {"approve_images": False}}, WHERE)


def test_how_the_video_looks_is_the_storyboards_own_and_applying_twice_changes_nothing() -> None:
    requested = {
        "assembly": {"width": 768, "height": 768, "exports": ["edl"], "captions": False},
        "generation": {"steps": 20, "local": {"frames": 14}},
        "safety": {"blocklist": ["dragon"]},
    }
    once = apply_storyboard_settings(Settings(), requested, WHERE)
    assert (once.assembly.width, once.assembly.height, once.assembly.exports) == (
        768,
        768,
        ("edl",),
    )
    assert not once.assembly.captions and once.generation.local.frames == 14
    assert apply_storyboard_settings(once, requested, WHERE) == once
    with pytest.raises(ConfigurationError, match="unknown key"):
        apply_storyboard_settings(Settings(), {"assembly": {"widht": 768}}, WHERE)


@pytest.mark.slow
def test_a_dropped_storyboard_cannot_move_the_cache_or_loosen_the_screen(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    config = tmp_path / "team.yaml"
    config.write_text("safety:\n  enabled: 'on'\n  blocklist: [dawn]\n")
    cases = {
        f"settings:\n  cache_dir: {elsewhere}\n": "settings.cache_dir",
        "settings:\n  shared_cache: s3://evil/stolen/\n": "settings.shared_cache",
        "settings:\n  safety: {enabled: 'off'}\n": "settings.safety.enabled",
    }
    for number, (storyboard, named) in enumerate(cases.items()):
        source = copy_demo_recordings(tmp_path / f"story{number}", ["dawn.ogg"])
        (source / "storyboard.yaml").write_text(storyboard)
        result = run_cli(
            ["run", str(source), "--out", str(tmp_path / f"out{number}"), "--config", str(config)],
            cli_env,
            tmp_path,
        )
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and named in errors[0], result.stderr
        assert not (tmp_path / f"out{number}" / "manifest.csv").exists()
    assert not elsewhere.exists()


@pytest.mark.slow
def test_a_watcher_skips_a_storyboard_that_asks_too_much_and_renders_the_others(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    inbox = tmp_path / "inbox"
    copy_demo_recordings(inbox / "good", ["dawn.ogg"])
    greedy = copy_demo_recordings(inbox / "greedy", ["night.ogg"])
    (greedy / "storyboard.yaml").write_text("settings:\n  shared_cache: s3://evil/stolen/\n")
    result = run_cli(
        ["watch", str(inbox), "--out", str(tmp_path / "out"), "--once", "--settle", "0"],
        cli_env,
        tmp_path,
    )
    assert result.returncode == 3, result.stderr
    assert (tmp_path / "out" / "good" / "storyboard.mp4").is_file()
    assert not (tmp_path / "out" / "greedy" / "storyboard.mp4").exists()
    skipped = [line for line in result.stderr.splitlines() if "greedy: not rendered" in line]
    assert len(skipped) == 1 and "settings.shared_cache" in skipped[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
