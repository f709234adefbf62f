"""The rework loop through the command: an unchanged re-run encodes nothing, a re-recorded
scene is the only one encoded again, and a scene deleted from the source leaves the target."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from clients.media.ffmpeg import probe
from tests.helpers import (
    DEMO_DIR,
    assert_clean,
    read_manifest,
    recorded_anew,
    run_cli,
    share_readings,
)

pytestmark = pytest.mark.slow


def _report(target: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((target / "run.json").read_text())
    return loaded


def test_rerun_re_encodes_only_what_changed_and_drops_deleted_scenes(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    source, target = tmp_path / "story", tmp_path / "out"
    source.mkdir()
    for name in ("1 dawn.ogg", "2 night.ogg", "3 river.mp3"):
        shutil.copy(DEMO_DIR / name.split(" ")[1], source / name)
    command = ["run", str(source), "--out", str(target)]
    cache = share_readings(tmp_path / "cache")  # no segment or chunk pre-made; readings shared
    cli_env = {**cli_env, "STORYBOARD_CACHE_DIR": str(cache)}

    first = run_cli(command, cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert _report(target)["assembly"] == {
        "segments_encoded": 3,
        "segments_reused": 0,
        "narration_encoded": True,
        "narration_chunks_encoded": 1,
    }
    length = probe(target / "storyboard.mp4").duration_s
    boards = cache / "assembly" / "boards"
    (board,) = boards.rglob("*.pdf")  # the board drawn while the video encoded, handed off
    assert board.read_bytes() == (target / "storyboard.pdf").read_bytes()

    unchanged = run_cli(command, cli_env, tmp_path)
    assert unchanged.returncode == 0, unchanged.stderr
    assert_clean(unchanged)
    assert _report(target)["assembly"] == {
        "segments_encoded": 0,
        "segments_reused": 3,
        "narration_encoded": False,
        "narration_chunks_encoded": 0,
    }
    assert "nothing changed, nothing re-encoded" in unchanged.stdout + unchanged.stderr
    assert _report(target)["flow_run_id"], "run.json names the flow run, for a link to the UI"
    assert probe(target / "storyboard.mp4").duration_s == pytest.approx(length, abs=0.01)

    (source / "2 night.ogg").unlink()
    dropped = run_cli(command, cli_env, tmp_path)
    assert dropped.returncode == 0, dropped.stderr
    assert read_manifest(target)["scene_id"].tolist() == ["1 dawn", "3 river"]
    assert sorted(p.name for p in (target / "scenes").iterdir()) == ["1_dawn", "3_river"]
    page = (target / "index.html").read_text()
    assert "2 night" not in page
    assert 'href="storyboard.pdf"' in page and 'href="storyboard.otio"' in page
    assert "2 night" not in (target / "storyboard.srt").read_text() + str(_report(target))
    assert probe(target / "storyboard.mp4").duration_s < length - 1.0
    assembly = _report(target)["assembly"]
    assert isinstance(assembly, dict) and assembly["narration_encoded"] is True
    assert (assembly["segments_encoded"], assembly["segments_reused"]) == (1, 1), (
        "scene 1 is where it was; scene 3 is now labelled Scene 2"
    )

    river_at = read_manifest(target).set_index("scene_id").loc["3 river", "start_s"]
    shutil.copy(DEMO_DIR / "elephants.ogg", source / "1 dawn.ogg")  # a retake, another length
    retaken = run_cli(command, cli_env, tmp_path)
    assert retaken.returncode == 0, retaken.stderr
    assembly = _report(target)["assembly"]
    assert isinstance(assembly, dict)
    assert (assembly["segments_encoded"], assembly["segments_reused"]) == (1, 1), (
        "a retake of another length costs its own segment only"
    )
    spans = read_manifest(target).set_index("scene_id")
    assert len(list(boards.rglob("*.pdf"))) == 3, "one board for each storyboard, no other"
    assert spans.loc["3 river", "start_s"] != river_at
    assert spans.loc["1 dawn", "end_s"] == pytest.approx(
        spans.loc["1 dawn", "audio_duration_s"], abs=1 / 24
    )


def test_a_retake_after_the_first_speech_is_transcribed_ahead_of_the_flow(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """The storyboard's language is known from its unchanged first speech, so the command reads
    the new recording while it starts, and the flow takes that transcript as this run's."""
    source, target = tmp_path / "story", tmp_path / "out"
    source.mkdir()
    for name in ("1 dawn.ogg", "2 elephants.ogg", "3 river.mp3", "4 storm.m4a", "5 night.ogg"):
        shutil.copy(DEMO_DIR / name.split(" ")[1], source / name)
    command = ["run", str(source), "--out", str(target)]
    cli_env = {**cli_env, "STORYBOARD_CACHE_DIR": str(share_readings(tmp_path / "cache"))}
    first = run_cli(command, cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "transcribe_ahead" not in _report(target)["stages"]  # type: ignore[operator]

    (source / "4 storm.m4a").unlink()
    recorded_anew("night.ogg", source / "4 storm.wav")
    retaken = run_cli(command, cli_env, tmp_path)
    assert retaken.returncode == 0, retaken.stderr
    assert_clean(retaken)
    assert "transcribed ahead of the flow, while the command started" in retaken.stderr
    stages = _report(target)["stages"]
    assert isinstance(stages, dict) and stages["transcribe_ahead"] > 0
    manifest = read_manifest(target).set_index("scene_id")
    assert "stars" in manifest.loc["4 storm", "transcript"].lower()
    assert manifest["status"].tolist() == ["ok"] * 5
    assembly = _report(target)["assembly"]
    assert isinstance(assembly, dict) and assembly["segments_encoded"] == 1
    names = _task_run_names(cli_env["PREFECT_API_URL"], str(_report(target)["flow_run_id"]))
    assert any(name.startswith("transcribed ahead") for name in names), names
    assert not any(name.startswith("transcribe ") for name in names), "nothing read twice"


def _task_run_names(api: str, flow_run_id: str) -> set[str]:
    """The names of the flow run's task runs, as the Prefect UI lists them, once it has them."""
    query = {"task_runs": {"flow_run_id": {"any_": [flow_run_id]}}}
    deadline = time.monotonic() + 60
    while True:
        names = {run["name"] for run in httpx.post(f"{api}/task_runs/filter", json=query).json()}
        if any(name.startswith("publish") for name in names) or time.monotonic() > deadline:
            return names
        time.sleep(0.5)
