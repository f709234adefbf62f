"""`storyboard run --backend nvidia` end to end against the strict fake API on loopback."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.fakes.nvidia_server import VALID_KEY, FakeNvidia, Faults
from tests.helpers import DEMO_DIR, assert_clean, embedded_prefect, nvidia_env, run_cli

pytestmark = pytest.mark.slow


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
    with FakeNvidia(Faults(transient_rate=0.25, async_rate=0.2, seed=11)) as fake:
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
    assert report["api_calls"] == sent >= 10
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
            nvidia_env(cli_env, fake, tmp_path / "c", "nvapi-revoked"),
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("storyboard: error")]
    assert len(errors) == 1
    assert "API key was refused (invalid or revoked): HTTP 403" in errors[0]
    assert fake.stats.generation_requests == 1
    assert not (tmp_path / "out" / "storyboard.mp4").exists()
    assert "nvapi-revoked" not in result.stdout + result.stderr
    assert elapsed < 120


def test_forbidden_content_is_filtered_and_the_rest_render(
    storyboard_dir: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    with FakeNvidia(filter_word="water") as fake:
        result = _run(storyboard_dir, tmp_path / "out", nvidia_env(cli_env, fake, tmp_path / "c"))
    assert result.returncode == 3, result.stderr
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    assert manifest["status"].tolist() == ["ok", "ok", "filtered", "ok", "ok"]
    assert "content filter" in manifest.loc[2, "error"]
    assert manifest.loc[2, "image_path"] == ""
    assert fake.stats.by_path["stabilityai/stable-video-diffusion"] == 4
