"""`storyboard run --backend nvidia` end to end against the strict fake API on loopback."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from testkit.fakes.nvidia_server import VALID_KEY, FakeNvidia, Faults
from tests.helpers import DEMO_DIR, assert_clean, embedded_prefect, nvidia_env, run_cli

pytestmark = pytest.mark.slow
SDXL = "stabilityai/stable-diffusion-xl"


@pytest.fixture
def storyboard_dir(tmp_path: Path) -> Path:
    source = tmp_path / "lion"
    shutil.copytree(DEMO_DIR, source)
    (tmp_path / "fast.yaml").write_text("generation:\n  requests_per_minute: 600\n")
    return source


def _run(source: Path, target: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    config = source.parent / "fast.yaml"
    return run_cli(
        ["run", str(source), "--out", str(target), "--config", str(config)], env, source.parent
    )


def _files_containing(root: Path, needle: bytes) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            yield path


def test_faulty_async_api_renders_every_scene_then_reruns_for_free(
    storyboard_dir: Path, session_home: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    cache = tmp_path / "cache"
    answered = ("429", "500", "502", "503")
    with FakeNvidia(
        Faults(transient_rate=0.25, async_rate=0.2, seed=11, fault_kinds=answered)
    ) as fake:
        # the embedded API, so that Prefect's database is in session_home, searched below
        env = nvidia_env(embedded_prefect(cli_env), fake, cache)
        first = _run(storyboard_dir, tmp_path / "out", env)
        assert first.returncode == 0, first.stderr
        assert_clean(first)
        assert "backend: nvidia" in first.stderr
        sent = fake.stats.generation_requests
        report = json.loads((tmp_path / "out" / "run.json").read_text())

        second = _run(storyboard_dir, tmp_path / "again", env)
        assert second.returncode == 0, second.stderr
        again = json.loads((tmp_path / "again" / "run.json").read_text())

    assert fake.stats.violations == []
    assert fake.stats.injected_faults > 0 and fake.stats.statuses[202] > 0
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    assert manifest["status"].tolist() == ["ok"] * 5
    assert set(manifest["backend"]) == {"nvidia"}
    assert report["api_calls"] == fake.stats.total_requests >= sent >= 10
    assert fake.stats.duplicate_jobs == 0
    assert fake.stats.generation_requests == sent, "the re-run must send nothing"
    assert (again["api_calls"], again["cache_hits"]) == (0, 10)

    needle = VALID_KEY.encode()
    roots = (tmp_path / "out", tmp_path / "again", cache, session_home / "prefect")
    for root in (*roots, session_home / "prefect-server"):  # the other tests' server
        assert list(_files_containing(root, needle)) == [], root
    for result in (first, second):
        assert VALID_KEY not in result.stdout + result.stderr


def test_a_refused_key_exits_1_at_once_with_one_line(
    storyboard_dir: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    with FakeNvidia() as fake:
        started = time.monotonic()
        result = _run(
            storyboard_dir,
            tmp_path / "out",
            nvidia_env(cli_env, fake, tmp_path / "c", "nvapi-revoked", shared_readings=False),
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("storyboard: error")]
    assert len(errors) == 1
    assert "API key was refused (invalid or revoked): HTTP 403" in errors[0]
    assert fake.stats.generation_requests == 0, "learnt before any paid request"
    assert fake.stats.key_checks == 1
    assert not list((tmp_path / "out").rglob("*")), "stopped before any work"
    assert not (tmp_path / "c" / "transcripts").exists(), "nothing transcribed"
    assert "nvapi-revoked" not in result.stdout + result.stderr
    assert elapsed < 120


def test_forbidden_content_is_filtered_and_a_retired_model_falls_back_as_configured(
    storyboard_dir: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    config = storyboard_dir.parent / "fast.yaml"
    config.write_text(config.read_text() + "  fallback_models: [flux.1-dev]\n")
    with FakeNvidia(filter_word="water") as fake:
        fake.retire(SDXL)
        result = _run(storyboard_dir, tmp_path / "out", nvidia_env(cli_env, fake, tmp_path / "c"))
    assert result.returncode == 3, result.stderr
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    assert manifest["status"].tolist() == ["ok", "ok", "filtered", "ok", "ok"]
    assert "content filter" in manifest.loc[2, "error"]
    assert manifest.loc[2, "image_path"] == ""
    assert fake.stats.by_path["stabilityai/stable-video-diffusion"] == 4
    assert fake.stats.by_path[SDXL] == 1 and fake.stats.violations == []
    made = manifest[manifest["status"] == "ok"]
    assert set(made["image_model"]) == {"flux.1-dev"}
    assert all("made by flux.1-dev: sdxl is retired" in note for note in made["note"])
    report = json.loads((tmp_path / "out" / "run.json").read_text())
    assert report["fallbacks"] == {"sdxl": "flux.1-dev"}
    assert report["api_calls"] == fake.stats.total_requests


def test_a_retired_model_stops_the_run_and_a_refused_setting_sends_nothing(
    storyboard_dir: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    with FakeNvidia() as fake:
        env = nvidia_env(cli_env, fake, tmp_path / "c")
        fake.retire(SDXL)
        retired = _run(storyboard_dir, tmp_path / "out", env)
        (storyboard_dir.parent / "fast.yaml").write_text("generation:\n  cfg_scale: 12\n")
        refused = _run(storyboard_dir, tmp_path / "out2", env)
    assert retired.returncode == 1, retired.stderr
    errors = [line for line in retired.stderr.splitlines() if line.startswith("storyboard: error")]
    assert len(errors) == 1 and "image model 'sdxl'" in errors[0], retired.stderr
    assert "Not found for account" in errors[0] and "flux.1-dev" in errors[0]
    assert "Traceback" not in retired.stderr
    assert fake.stats.by_path[SDXL] <= 2
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "storyboard: error: generation.cfg_scale: 12.0 is refused by"
        " stabilityai/stable-diffusion-xl (cfg_scale must be above 1 and at most 9)"
    )
    assert fake.stats.by_path[SDXL] <= 2  # the refused setting sent nothing
