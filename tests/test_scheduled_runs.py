"""What a user does first: `prefect server start`, `storyboard serve SOURCE --out TARGET
--interval 5`, and a storyboard dropped into SOURCE, rendered by a flow run that the server's
scheduler created on its own; here on PostgreSQL (production). On SQLite (the default), the
scheduler's watcher runs render a dropped storyboard in tests/test_studio_served.py.

The servers' logs must stay free of tracebacks and ERROR lines (`PrefectServer.stop`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import DEMO_DIR, wait_for
from tests.servers import PrefectServer, start_postgres, start_prefect_server

pytestmark = pytest.mark.slow
STORYBOARD = str(Path(sys.executable).with_name("storyboard"))
RENDER_DEADLINE_S = 180
INTERVAL_S = 5
"""`storyboard serve --interval`: the scheduler's next watcher run comes within seconds."""


@pytest.fixture
def scheduling_server(tmp_path: Path) -> Iterator[PrefectServer]:
    """A Prefect server of this test's own, with its scheduler, on a PostgreSQL cluster."""
    cluster = start_postgres()
    try:
        server = start_prefect_server(tmp_path / "prefect-server", database_url=cluster.url)
        yield server
        server.stop()
    finally:
        cluster.stop()


def post(api: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.post(f"{api}{path}", json=body, timeout=30)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def finished_render(api: str) -> dict[str, Any] | None:
    """The completed `storyboard` flow run (a render inside a watcher run), if there is one."""
    flows = {f["id"]: f["name"] for f in post(api, "/flows/filter", {})}
    for run in post(api, "/flow_runs/filter", {}):
        if flows[run["flow_id"]] == "storyboard" and run["state_type"] == "COMPLETED":
            return run
    return None


def test_serve_renders_a_dropped_storyboard_in_a_run_the_scheduler_created(
    scheduling_server: PrefectServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    api = scheduling_server.api
    source, target = tmp_path / "inbox", tmp_path / "renders"
    (source / "lion").mkdir(parents=True)
    shutil.copy(DEMO_DIR / "dawn.ogg", source / "lion" / "dawn.ogg")  # waiting for the first run
    env = {**cli_env, "PREFECT_API_URL": api}
    serving = subprocess.Popen(  # noqa: S603 - fixed argument list
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
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_for(
            lambda: (
                {"drop-folder", "on-demand"}
                <= {d["name"] for d in post(api, "/deployments/filter", {})}
            ),
            120,
        ), "storyboard serve did not register its deployments"
        assert wait_for(lambda: finished_render(api) is not None, RENDER_DEADLINE_S), (
            f"nothing rendered within {RENDER_DEADLINE_S} s; flow runs: "
            f"{[(r['name'], r['state_type']) for r in post(api, '/flow_runs/filter', {})]}"
        )
        render = finished_render(api)
        assert render is not None
        parent = httpx.get(f"{api}/task_runs/{render['parent_task_run_id']}").json()
        watcher = f"{api}/flow_runs/{parent['flow_run_id']}"
        assert wait_for(lambda: httpx.get(watcher).json()["state_type"] == "COMPLETED", 60)
    finally:
        serving.terminate()
        output, _ = serving.communicate(timeout=60)

    assert httpx.get(watcher).json()["auto_scheduled"], "the scheduler made the watcher run"
    flows = {f["id"]: f["name"] for f in post(api, "/flows/filter", {})}
    runs = post(api, "/flow_runs/filter", {})
    watcher_runs = [r for r in runs if flows[r["flow_id"]] == "storyboard-watch"]
    assert all(run["auto_scheduled"] for run in watcher_runs), watcher_runs
    assert (target / "lion" / "storyboard.mp4").is_file()
    assert (target / "lion" / "manifest.csv").is_file()
    assert "Traceback" not in output, output
