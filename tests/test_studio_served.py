"""The review studio with the drop-folder service, end to end: a Prefect server of this test's
own, `storyboard serve SOURCE --out TARGET` serving against it, and the studio over the same
SOURCE and TARGET. A re-take in the studio is a flow run of `storyboard/on-demand` with `only`
set, executed by the serving process; the watcher renders the storyboard once when it is
dropped in, in a run the server's scheduler created (on SQLite; tests/test_scheduled_runs.py
does the same on PostgreSQL), and never renders the re-take a second time (the studio holds the
watcher's claim on the change while the on-demand run renders it).

The studio is driven through Starlette's TestClient, as in tests/test_studio_api.py (whose
helpers are repeated here in short: test modules do not import one another).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from starlette.testclient import TestClient

from clients.layout import rendered_fingerprint
from clients.storage import open_storage
from domain.layout import CLAIMS_FOLDER
from studio.app import create_app
from studio.config import StudioConfig
from studio.renders import RenderService, choose_backend, source_fingerprint
from tests.helpers import (
    DEMO_DIR,
    RUNNER_POLL_S,
    STUDIO_URL,
    prefect_api,
    read_manifest,
    studio_page,
    wait_for,
    wait_until_idle,
)
from tests.servers import PrefectServer, start_prefect_server

pytestmark = pytest.mark.slow
STORYBOARD = str(Path(sys.executable).with_name("storyboard"))
BOARD = "alpha"
STORYBOARD_YAML = """\
title: Served studio test
seed: 1234
scenes:
  - id: dawn
  - id: river
settings:
  assembly: {width: 768, height: 768, captions: false, exports: [edl]}
"""
"""Its own settings, which the watcher's render and the on-demand re-take both follow."""
INTERVAL_S = 10
"""`storyboard serve --interval`: how often the watcher looks at SOURCE."""
PREFECT_UI = "http://prefect.example:4200"


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[PrefectServer]:
    """A Prefect server of this test's own: `storyboard/on-demand` is looked up by name."""
    server = start_prefect_server(tmp_path / "prefect-server")
    yield server
    server.stop()


def serve_env(api: str) -> dict[str, str]:
    """The environment of `storyboard serve`, as conftest's `cli_env` (this session's Prefect
    home and content cache, set by conftest) but reporting to `api`; without `cli_env` itself,
    which would start the session's Prefect server as well."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NVIDIA_API_KEY", "PREFECT_API_URL"} and not key.startswith("PYTEST")
    }
    env.update(PREFECT_API_URL=api, PREFECT_RUNNER_POLL_FREQUENCY=RUNNER_POLL_S)
    return env


@contextmanager
def serving(source: Path, target: Path, env: dict[str, str], log: Path) -> Iterator[Path]:
    """`storyboard serve SOURCE --out TARGET`, its output in `log`; stopped however the test
    ends."""
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(  # noqa: S603 - fixed argument list
            [
                STORYBOARD,
                "serve",
                str(source),
                "--out",
                str(target),
                "--interval",
                str(INTERVAL_S),
                "--settle",
                "1",
            ],
            env=env,
            cwd=log.parent,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield log
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def api_post(api: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = prefect_api("POST", f"{api}{path}", json=body)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def api_get(api: str, path: str) -> Any:
    response = prefect_api("GET", f"{api}{path}")
    response.raise_for_status()
    return response.json()


def runs_of(api: str, flow_name: str) -> list[dict[str, Any]]:
    return api_post(api, "/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}})


def moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def deployment_status(api: str, name: str) -> str | None:
    found = httpx.get(f"{api}/deployments/name/{name}", timeout=30)
    return str(found.json()["status"]) if found.status_code == 200 else None


def rendered_and_released(target: Path, fingerprint: str | None) -> bool:
    """Whether TARGET holds the render of `fingerprint` and nobody claims a render there."""
    storage = open_storage(str(target))
    claims = target / CLAIMS_FOLDER
    held = claims.is_dir() and any(claims.iterdir())
    return rendered_fingerprint(storage) == fingerprint and not held


def manifest_rows(target: Path) -> dict[str, dict[str, Any]]:
    """The rows of TARGET's manifest.csv by scene id."""
    rows = read_manifest(target).to_dict("records")
    return {str(row["scene_id"]): {str(k): v for k, v in row.items()} for row in rows}


def as_the_storyboard_asks(target: Path) -> bool:
    """Whether TARGET's video is 768x768 with an EDL beside it, as STORYBOARD_YAML asks."""
    with av.open(str(target / "storyboard.mp4")) as container:
        stream = container.streams.video[0]
        size = (stream.codec_context.width, stream.codec_context.height)
    return size == (768, 768) and (target / "storyboard.edl").is_file()


def post_action(client: TestClient, scene: str, action: str, data: dict[str, str]) -> Any:
    return client.post(
        f"/storyboard/scene/{scene}/{action}",
        params={"board": BOARD},
        headers={"X-CSRF-Token": studio_page(client, BOARD)[1]},
        data=data,
    )


def test_a_retake_is_a_flow_run_of_on_demand_executed_by_storyboard_serve(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    api = prefect_server.api
    source, target = tmp_path / "projects", tmp_path / "rendered"
    board = source / BOARD
    board.mkdir(parents=True)
    for name in ("dawn.ogg", "river.mp3"):
        shutil.copy(DEMO_DIR / name, board / name)
    (board / "storyboard.yaml").write_text(STORYBOARD_YAML, encoding="utf-8")
    dropped = source_fingerprint(open_storage(str(board)))
    assert dropped is not None

    with serving(source, target, serve_env(api), tmp_path / "serve.log") as log:
        # The watcher renders the dropped storyboard (SOURCE/alpha to TARGET/alpha) first.
        assert wait_for(lambda: rendered_and_released(target / BOARD, dropped), 240), (
            f"the watcher did not render {BOARD}:\n{log.read_text()[-4000:]}"
        )
        assert wait_for(lambda: deployment_status(api, "storyboard/on-demand") == "READY", 60)
        before = manifest_rows(target / BOARD)
        assert as_the_storyboard_asks(target / BOARD), "the watcher's render"

        config = StudioConfig(source=str(source), target=str(target), prefect_ui=PREFECT_UI)
        renders = RenderService(config, lambda: choose_backend(config, api), claim_poll_s=0.05)
        app = create_app(config, renders)
        with TestClient(app, base_url=STUDIO_URL, headers={"Accept": "application/json"}) as client:
            status = client.get("/storyboard/render", params={"board": BOARD}).json()
            assert status["renderer"] == "prefect", status["renderer_label"]
            answer = post_action(client, "river", "take", {"seed": "11"})
            assert answer.status_code == 200, answer.text
            changed = source_fingerprint(open_storage(str(board)))
            assert changed not in (None, dropped)
            status = wait_until_idle(client, BOARD, 180)
        job = status["jobs"][-1]
        assert (job["renderer"], job["state"], job["scenes"]) == ("prefect", "done", ["river"])
        assert job["flow_run_url"] == f"{PREFECT_UI}/runs/flow-run/{job['flow_run_id']}"

        # The re-take is one run of storyboard/on-demand, with `only`, run by `serve`.
        on_demand = api_get(api, "/deployments/name/storyboard/on-demand")
        (run,) = api_post(
            api, "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [on_demand["id"]]}}}
        )
        assert run["id"] == job["flow_run_id"]
        assert run["parameters"]["only"] == ["river"]
        assert run["parameters"]["source"] == str(board)
        assert run["parameters"]["target"] == str(target / BOARD)
        assert run["parameters"]["source_fingerprint"] == changed
        assert run["state_type"] == "COMPLETED" and run["run_count"] == 1, run
        states = api_get(api, f"/flow_run_states/?flow_run_id={run['id']}")
        assert [state["type"] for state in states][-2:] == ["RUNNING", "COMPLETED"], states

        # The watcher looks again after the re-take was rendered: nothing left to render.
        finished = moment(run["end_time"])
        assert wait_for(
            lambda: any(
                watch["state_type"] == "COMPLETED" and moment(watch["start_time"]) > finished
                for watch in runs_of(api, "storyboard-watch")
                if watch["start_time"]
            ),
            4 * INTERVAL_S + 60,
        ), f"no watcher pass after the re-take:\n{log.read_text()[-4000:]}"
    output = log.read_text()
    watches = runs_of(api, "storyboard-watch")
    assert all(watch["auto_scheduled"] for watch in watches), "the scheduler made each watcher run"

    # One render per change: the watcher's of the dropped storyboard, on-demand's of the take.
    renders_done = runs_of(api, "storyboard")
    rendered_changes = sorted(
        (r["parameters"]["source_fingerprint"], r["deployment_id"] is None, r["state_type"])
        for r in renders_done
    )
    assert rendered_changes == sorted(
        [(dropped, True, "COMPLETED"), (changed, False, "COMPLETED")]
    ), rendered_changes

    after = manifest_rows(target / BOARD)
    assert as_the_storyboard_asks(target / BOARD), "the on-demand re-take"
    assert int(after["river"]["seed"]) == 11 != int(before["river"]["seed"])
    assert after["river"]["audio_sha256"] == before["river"]["audio_sha256"]
    assert after["dawn"] == before["dawn"], "dawn is as it was"
    report = json.loads((target / BOARD / "run.json").read_text())
    assert report["source_fingerprint"] == changed
    assert report["flow_run_id"] == run["id"]
    assert report["cache_hits"] >= 2, "dawn's image and clip come from the cache"
    assert rendered_and_released(target / BOARD, changed)
    assert "Traceback" not in output, output
