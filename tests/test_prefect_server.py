"""A run reported to a real Prefect server process, read back through its REST API."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.fakes.nvidia_server import FakeNvidia
from tests.helpers import DEMO_DIR, assert_clean, nvidia_env, run_cli
from tests.servers import start_prefect_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of this module's own, so the runs it reads back are only this module's."""
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-server"))
    yield server.api
    server.stop()


def test_runs_task_names_and_artifacts_are_visible_in_the_server(
    prefect_server: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "ui demo"
    source.mkdir()
    for name in ("dawn.ogg", "night.ogg", "river.mp3"):
        shutil.copy(DEMO_DIR / name, source / name)
    with FakeNvidia() as fake:
        own_readings = nvidia_env(cli_env, fake, tmp_path / "cache", shared_readings=False)
        env = {**own_readings, "PREFECT_API_URL": prefect_server}
        result = run_cli(["run", str(source), "--out", str(tmp_path / "out")], env, tmp_path)
        assert result.returncode == 0, result.stderr
        shutil.copy(DEMO_DIR / "elephants.ogg", source / "night.ogg")  # a retake
        retaken = run_cli(["run", str(source), "--out", str(tmp_path / "out")], env, tmp_path)
    assert retaken.returncode == 0, retaken.stderr
    assert_clean(result)
    assert "Starting temporary server" not in result.stderr

    flow_runs = httpx.post(f"{prefect_server}/flow_runs/filter", json={}).json()
    first, again = sorted(
        (r for r in flow_runs if r["state_type"] == "COMPLETED"), key=lambda r: r["start_time"]
    )
    retake_filter = {"task_runs": {"flow_run_id": {"any_": [again["id"]]}}}
    retake_tasks = httpx.post(f"{prefect_server}/task_runs/filter", json=retake_filter).json()
    reads = {task["name"] for task in retake_tasks if task["name"].startswith("transcribe")}
    assert reads == {"transcribe night (1 scene)"}, "a cached transcript costs no task"
    run = first
    flows = {
        f["id"]: f["name"] for f in httpx.post(f"{prefect_server}/flows/filter", json={}).json()
    }
    assert flows[run["flow_id"]] == "storyboard"
    assert run["parameters"]["backend"] == "nvidia"

    task_filter = {"task_runs": {"flow_run_id": {"any_": [run["id"]]}}}
    task_runs = httpx.post(f"{prefect_server}/task_runs/filter", json=task_filter).json()
    by_name = {task["name"]: task for task in task_runs}
    transcribed = ("transcribe dawn (1 scene)", "transcribe night, river (2 scenes)")
    assert {*transcribed, "generate dawn", "generate night", "generate river"} <= set(by_name)
    # the stream: dawn is generated while the next scenes are still being transcribed
    started = datetime.fromisoformat(by_name["generate dawn"]["start_time"])
    assert started < datetime.fromisoformat(by_name[transcribed[1]]["end_time"])
    assert all(task["state_type"] == "COMPLETED" for task in task_runs)

    artifacts = httpx.post(f"{prefect_server}/artifacts/filter", json={}).json()
    by_key = {
        artifact["key"]: artifact for artifact in artifacts if artifact["flow_run_id"] == run["id"]
    }
    assert by_key["manifest-ui-demo"]["type"] == "table"
    assert "dawn" in str(by_key["manifest-ui-demo"]["data"])
    assert by_key["summary-ui-demo"]["type"] == "markdown"
    assert "storyboard.mp4" in by_key["summary-ui-demo"]["data"]
    assert by_key["progress-ui-demo"]["type"] == "progress"
    assert by_key["progress-ui-demo"]["data"] == 100.0


def test_serve_registers_deployments_and_runs_one_on_demand(
    prefect_server: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "renders"
    (inbox / "one").mkdir(parents=True)
    shutil.copy(DEMO_DIR / "dawn.ogg", inbox / "one" / "dawn.ogg")
    env = {**cli_env, "PREFECT_API_URL": prefect_server}
    serving = subprocess.Popen(  # noqa: S603 - fixed argument list
        [
            str(Path(sys.executable).with_name("storyboard")),
            "serve",
            str(inbox),
            "--out",
            str(out),
            "--interval",
            "3600",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deployments: dict[str, dict[str, object]] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(deployments) < 2:
            time.sleep(0.5)
            found = httpx.post(f"{prefect_server}/deployments/filter", json={}).json()
            deployments = {d["name"]: d for d in found}
        assert {"drop-folder", "on-demand"} <= set(deployments)
        schedules = deployments["drop-folder"]["schedules"]
        assert schedules[0]["schedule"]["interval"] == 3600.0  # type: ignore[index]

        created = _create_flow_run(
            f"{prefect_server}/deployments/{deployments['on-demand']['id']}/create_flow_run",
            {"source": str(inbox / "one"), "target": str(out / "adhoc")},
        )
        state = ""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and state not in {"COMPLETED", "FAILED", "CRASHED"}:
            time.sleep(0.5)
            state = httpx.get(f"{prefect_server}/flow_runs/{created['id']}").json()["state_type"]
        assert state == "COMPLETED"
        assert (out / "adhoc" / "storyboard.mp4").is_file()
    finally:
        serving.terminate()
        serving.communicate(timeout=60)


def _create_flow_run(url: str, parameters: dict[str, str]) -> dict[str, Any]:
    """As the UI's "Run" button does; a server busy with the runner's own writes (SQLite) may
    answer 5xx for a moment, as it would to the button."""
    for _ in range(5):
        response = httpx.post(url, json={"parameters": parameters})
        if response.status_code < 500:
            break
        time.sleep(2)
    assert response.status_code < 300, f"HTTP {response.status_code}: {response.text}"
    created: dict[str, Any] = response.json()
    return created
