"""Prefect's temporary server, started early and outside the terminal's process group.

Without `PREFECT_API_URL` a run needs an API of its own. Prefect would start its temporary
("ephemeral") server as a child in the caller's process group, so Ctrl-C in a terminal kills
it together with the run, and the run then spends minutes retrying a server that is gone; and
it imports the whole server into the caller just to launch it. Here the same server (Prefect's
own app factory, run by uvicorn exactly as Prefect runs it) is launched in a session of its
own as soon as the command knows it needs one, so it starts while the command loads the rest
of itself; an interrupt reaches only the run, which stops at once and then stops the server.
What the server itself prints (its shutdown cancels its own event flushing with tracebacks
that are not the user's business) goes to `temporary-server.log` in PREFECT_HOME.
`stop_all` is for a hard exit; a run killed outright leaves it to the server's watchdog
(`flows/server_watchdog.py`) to stop.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import prefect
from prefect.settings import get_current_settings

from clients.lease import process_running

STARTUP_TIMEOUT_S = 90.0
LOG_LIMIT_BYTES = 5_000_000
PORT_TAKEN = 3
TEMPORARY_APIS = "temporary-apis"
"""In PREFECT_HOME: a record of each temporary server's API while it runs."""
"""uvicorn's exit status when its port was taken between choosing it and binding it."""

_RUNNING: list[DetachedTemporaryServer] = []
_logger = logging.getLogger("prefect")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DetachedTemporaryServer:
    """One temporary Prefect API server: `launch` returns at once, `wait_until_ready` blocks."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[Any] | None = None
        self.log: Path | None = None
        self.record: Path | None = None
        self.used = False
        """Whether a run waited for it (a server launched for a run that never started is
        stopped without a word)."""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def launch(self) -> None:
        server_env = {
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        app_dir = str(prefect.__module_path__.parent)
        settings = get_current_settings()
        log = Path(settings.home).expanduser() / "temporary-server.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if log.is_file() and log.stat().st_size > LOG_LIMIT_BYTES:
            log.unlink()
        self.log = log
        with log.open("ab") as output:
            self.process = self._popen(app_dir, server_env, output)
        self._record(Path(settings.home).expanduser())
        if self not in _RUNNING:
            _RUNNING.append(self)
            atexit.register(self.stop)

    def _record(self, home: Path) -> None:
        """Say in PREFECT_HOME that this machine serves a run's API here, for the studio,
        which answers a paused run only on its own API or on one recorded so."""
        self._forget()
        assert self.process is not None
        self.record = home / TEMPORARY_APIS / f"{self.port}.json"
        self.record.parent.mkdir(parents=True, exist_ok=True)
        document = {"api_url": self.api_url, "pid": self.process.pid}
        self.record.write_text(json.dumps(document), encoding="utf-8")

    def _forget(self) -> None:
        if self.record is not None:
            self.record.unlink(missing_ok=True)
            self.record = None

    def _popen(
        self, app_dir: str, server_env: dict[str, str], output: BinaryIO
    ) -> subprocess.Popen[Any]:
        return subprocess.Popen(  # noqa: S603 - fixed argument list
            [
                sys.executable,
                "-m",
                "flows.server_watchdog",
                str(os.getpid()),
                "--app-dir",
                app_dir,
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env={
                **os.environ,
                **server_env,
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
            stdout=output,
            stderr=output,
            start_new_session=True,
        )

    def wait_until_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Block until the server answers its health check (RuntimeError if it never does)."""
        _logger.info("Starting temporary server on http://127.0.0.1:%d", self.port)
        self.used = True
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() == PORT_TAKEN:
                    self.port = free_port()
                    self.launch()
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        status = self.process.poll() if self.process is not None else None
        raise RuntimeError(
            "timed out waiting for the temporary Prefect API server"
            + (f" (it exited with status {status})" if status is not None else "")
            + f"; its output is in {self.log}"
        )

    def stop(self) -> None:
        self._forget()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if self.used:
            _logger.info("Stopping temporary server on http://127.0.0.1:%d", self.port)
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def recorded_temporary_apis() -> set[str]:
    """The APIs of the temporary servers that runs on this machine recorded in PREFECT_HOME
    and that still run."""
    folder = Path(get_current_settings().home).expanduser() / TEMPORARY_APIS
    found = set()
    for record in folder.glob("*.json") if folder.is_dir() else ():
        try:
            document = json.loads(record.read_text(encoding="utf-8"))
            serving = process_running(int(document["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if serving:
            found.add(str(document["api_url"]).rstrip("/"))
    return found


def stop_all() -> None:
    """Kill every temporary server this process started (for an exit that skips atexit)."""
    for server in _RUNNING:
        process = server.process
        if process is not None and process.poll() is None:
            process.kill()
