"""Approve the pictures before paying for motion: `storyboard run --approve-images` against a
real Prefect server and the fake NVIDIA API. The run pauses (Paused in the API) with a typed
form; nothing is sent to SVD until the form is answered through the API the way the Prefect
UI answers it (`POST /flow_runs/{id}/resume` with `run_input`); a rejected scene comes back
with a new image at another seed; nobody answering ends the waiting scenes failed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from testkit.fakes.nvidia_schemas import SDXL, SVD
from testkit.fakes.nvidia_server import FakeNvidia
from tests.helpers import (
    assert_clean,
    copy_demo_recordings,
    nvidia_env,
    prefect_api,
    read_manifest,
    run_cli,
    running_storyboard,
    wait_for_value,
)

pytestmark = pytest.mark.slow
SCENES = ("dawn", "night", "river")  # natural order of the file names
RECORDINGS = ("dawn.ogg", "river.mp3", "night.ogg")
PAUSE_DEADLINE_S = 120


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return copy_demo_recordings(tmp_path / "lion", RECORDINGS)


def _config(tmp_path: Path, timeout_s: int = 86_400) -> Path:
    config = tmp_path / "approve.yaml"
    config.write_text(
        "generation:\n  requests_per_minute: 600\n"
        f"  approval_timeout_s: {timeout_s}\n  approval_poll_s: 1\n"
    )
    return config


def _flow_run_for(api: str, target: Path) -> dict[str, Any] | None:
    runs = prefect_api("POST", f"{api}/flow_runs/filter", json={}).json()
    ours = [run for run in runs if run["parameters"].get("target") == str(target)]
    return ours[0] if ours else None


def _paused(api: str, target: Path, pause_key: str) -> dict[str, Any]:
    """The run once paused at `pause_key` with its form's schema saved (what the UI waits for
    before it offers the form)."""

    def paused() -> dict[str, Any] | None:
        run = _flow_run_for(api, target)
        if run is None or run["state_type"] != "PAUSED":
            return None
        details = run["state"]["state_details"]
        if details.get("pause_key") != pause_key:
            return None
        schema = prefect_api("GET", f"{api}/flow_runs/{run['id']}/input/paused-{pause_key}-schema")
        return run if schema.status_code == 200 else None

    found: dict[str, Any] = wait_for_value(paused, PAUSE_DEADLINE_S, f"paused at {pause_key}")
    return found


def _form_schema(api: str, run: dict[str, Any], pause_key: str) -> dict[str, Any]:
    answer = prefect_api("GET", f"{api}/flow_runs/{run['id']}/input/paused-{pause_key}-schema")
    schema: dict[str, Any] = (
        json.loads(answer.json()) if isinstance(answer.json(), str) else (answer.json())
    )
    return schema


def _resume(api: str, run: dict[str, Any], answers: dict[str, dict[str, str]]) -> None:
    """What the Prefect UI's Resume form sends."""
    response = prefect_api(
        "POST", f"{api}/flow_runs/{run['id']}/resume", json={"run_input": answers}
    )
    response.raise_for_status()
    assert response.json()["status"] == "ACCEPT", response.json()


def _image_seeds(fake: FakeNvidia) -> list[tuple[str, int]]:
    return [
        (body["text_prompts"][0]["text"], body["seed"])
        for path, body in fake.stats.job_bodies
        if path == SDXL
    ]


def test_a_paused_run_sends_no_clip_request_until_approved_and_retakes_what_was_rejected(
    board: Path, tmp_path: Path, cli_env: dict[str, str], prefect_api: str
) -> None:
    target, cache = tmp_path / "out", tmp_path / "cache"
    args = [
        "run",
        str(board),
        "--out",
        str(target),
        "--config",
        str(_config(tmp_path)),
        "--approve-images",
    ]
    with FakeNvidia() as fake:
        env = nvidia_env(cli_env, fake, cache)
        with running_storyboard(args, env, tmp_path) as process:
            run = _paused(prefect_api, target, "approve-images-1")
            assert fake.stats.by_path[SDXL] == 3 and fake.stats.by_path[SVD] == 0
            pending = json.loads((target / "approval" / "pending.json").read_text())
            assert pending["flow_run_id"] == run["id"] and pending["round"] == 1
            assert [scene["scene_id"] for scene in pending["scenes"]] == list(SCENES)
            for scene in pending["scenes"]:
                assert (target / "approval" / scene["image"]).stat().st_size > 0
            assert (target / "approval" / "contact_sheet.png").stat().st_size > 0
            schema = _form_schema(prefect_api, run, "approve-images-1")
            assert list(schema["properties"]) == list(SCENES)
            time.sleep(2)  # paused, however long it waits: still no clip
            assert fake.stats.by_path[SVD] == 0

            _resume(
                prefect_api,
                run,
                {
                    "dawn": {"decision": "approve"},
                    "river": {"decision": "reject", "note": "too dark"},
                    "night": {"decision": "approve", "note": ""},
                },
            )
            run = _paused(prefect_api, target, "approve-images-2")
            pending = json.loads((target / "approval" / "pending.json").read_text())
            assert [scene["scene_id"] for scene in pending["scenes"]] == ["river"]
            assert pending["scenes"][0]["rejected_before"] == "too dark"
            seeds = _image_seeds(fake)
            assert len(seeds) == 4, "river's new take, before any clip of its own"
            river = [seed for prompt, seed in seeds if prompt == seeds[-1][0]]
            assert len(river) == 2 and river[0] != river[1], seeds
            _resume(prefect_api, run, {"river": {"decision": "approve"}})
            stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
        assert_clean(subprocess.CompletedProcess(args, 0, stdout, stderr))
        assert fake.stats.by_path[SVD] == 3, "exactly one clip per approved scene"
        assert fake.stats.by_path[SDXL] == 4

        manifest = read_manifest(target).set_index("scene_id")
        assert manifest.loc["river", "seed"] == river[1]
        assert (manifest["status"] == "ok").all()
        assert not (target / "approval").exists(), "nothing waits any more, no empty folder"
        assert "3 images wait for approval" in stderr and "1 image waits for approval" in stderr
        report = json.loads((target / "run.json").read_text())
        assert report["api_calls"] == fake.stats.total_requests

        again = run_cli([*args[:3], str(tmp_path / "again"), *args[4:]], env, tmp_path)
        assert again.returncode == 0, again.stderr
        assert fake.stats.generation_requests == 7, "approved images are not asked for again"
        rerun = json.loads((tmp_path / "again" / "run.json").read_text())
        assert (rerun["api_calls"], rerun["cache_hits"]) == (0, 6)
        assert "approve-images-1" not in json.dumps(_flow_run_for(prefect_api, tmp_path / "again"))


def test_nobody_answering_in_time_fails_the_waiting_scenes_and_keeps_the_approved_ones(
    board: Path, tmp_path: Path, cli_env: dict[str, str], prefect_api: str
) -> None:
    target = tmp_path / "out"
    args = [
        "run",
        str(board),
        "--out",
        str(target),
        "--config",
        str(_config(tmp_path, timeout_s=12)),
        "--approve-images",
    ]
    with FakeNvidia() as fake:
        env = nvidia_env(cli_env, fake, tmp_path / "cache")
        with running_storyboard(args, env, tmp_path) as process:
            run = _paused(prefect_api, target, "approve-images-1")
            _resume(
                prefect_api,
                run,
                {
                    "dawn": {"decision": "approve"},
                    "river": {"decision": "reject", "prompt": "a river of stars"},
                    "night": {"decision": "skip"},
                },
            )
            _paused(prefect_api, target, "approve-images-2")  # and nobody answers
            stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 3, stderr
        assert "Traceback" not in stdout + stderr
        assert fake.stats.by_path[SVD] == 1, "only dawn's clip"
        prompts = [prompt for prompt, _ in _image_seeds(fake)]
        assert any(prompt.startswith("a river of stars") for prompt in prompts), prompts

    manifest: pd.DataFrame = read_manifest(target).set_index("scene_id")
    assert manifest.loc["dawn", "status"] == "ok"
    assert manifest.loc["river", "status"] == "failed"
    assert manifest.loc["river", "error"] == "not approved in time"
    assert manifest.loc["river", "prompt"].startswith("a river of stars")
    assert manifest.loc["night", "error"] == "skipped at image approval"
    assert (target / "storyboard.mp4").stat().st_size > 0
    finished = _flow_run_for(prefect_api, target)
    assert finished is not None and finished["state_type"] == "COMPLETED"
