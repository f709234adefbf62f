"""Real servers on loopback for the tests and the benchmarks: `prefect server start`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerDidNotStart(RuntimeError):
    """The server exited, or did not answer its health check in time; the message holds the
    end of its log."""


def launch_prefect_server(
    home: Path, database_url: str | None = None, environment: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`prefect server start` on a free loopback port, telemetry off (these machines have no
    internet), on SQLite in `home` or on the database at `database_url`, once it answers: its
    process, API URL and log file."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **(environment or {}),
    }
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    log = home / "server.log"
    command = [str(Path(sys.executable).with_name("prefect")), "server", "start"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-ui", "--analytics-off"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return process, api, log
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    process.wait(timeout=30)
    raise ServerDidNotStart(log.read_text(errors="replace")[-4000:])


def deployment_runs(api: str, name: str) -> list[dict[str, Any]]:
    """The flow runs of the deployment `name` ("flow/deployment") on the server at `api`,
    oldest first; none while the deployment is not registered."""
    found = httpx.get(f"{api}/deployments/name/{name}")
    if found.status_code == 404:
        return []
    found.raise_for_status()
    body = {"flow_runs": {"deployment_id": {"any_": [found.json()["id"]]}}}
    runs = httpx.post(f"{api}/flow_runs/filter", json=body).json()
    return sorted(runs, key=lambda run: str(run["created"]))
