"""Prefect's temporary server, started outside the terminal's process group.

Prefect starts its temporary ("ephemeral") API server as a child in the caller's process
group, so Ctrl-C in a terminal kills it together with the run, and the run then spends minutes
retrying a server that is gone. Here the same server (Prefect's own app factory, run by
uvicorn exactly as Prefect runs it) starts in a session of its own: an interrupt reaches only
the run, which stops at once and then stops the server. `stop_all` is for a hard exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import prefect
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import get_current_settings

_RUNNING: list[DetachedTemporaryServer] = []


class DetachedTemporaryServer(SubprocessASGIServer):
    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        server_env = {
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        app_dir = str(prefect.__module_path__.parent)
        process = subprocess.Popen(  # noqa: S603 - fixed argument list
            [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
             str(self.port), "--log-level", "error", "--lifespan", "on"],
            env={
                **os.environ,
                **server_env,
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
            start_new_session=True,
        )  # fmt: skip
        _RUNNING.append(self)
        return process


def stop_all() -> None:
    """Kill every temporary server this process started (for an exit that skips atexit)."""
    for server in _RUNNING:
        process = server.server_process
        if process is not None and process.poll() is None:
            process.kill()
