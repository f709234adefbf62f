"""Real servers for the tests: `prefect server start` (on SQLite or PostgreSQL) and a
throw-away PostgreSQL cluster from Debian's `postgresql`.

A Prefect server started here writes its log to a file; stopping it fails the test when that
log, up to the moment of the stop, holds a traceback or an ERROR line.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testkit.servers import ServerDidNotStart, free_port, launch_prefect_server

PROBLEM_LINE = re.compile(r"Traceback|\bERROR\b")
LOG_RECORD = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| ")
SQLITE_LOCKED = "(sqlite3.OperationalError) database is locked"
"""SQLite's answer to two writers at once in WAL mode, given at once when a reading transaction
must become a writer (no busy timeout helps): Prefect's server answers that request 503 or
retries its own flush, and its clients retry. Prefect's remedy is PostgreSQL
(`test_scheduled_runs.py` runs on it too); on SQLite the record is not a fault of ours."""


def _records(text: str) -> list[list[str]]:
    """The log's records: each line that starts with a time, with the lines that follow it."""
    records: list[list[str]] = []
    for line in text.splitlines():
        if LOG_RECORD.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return records


@dataclass
class PrefectServer:
    process: subprocess.Popen[bytes]
    api: str
    log: Path

    def problems(self) -> list[str]:
        """Traceback and ERROR lines the server has logged so far, except in the records of a
        locked SQLite database (`SQLITE_LOCKED`)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [
            line
            for record in _records(text)
            if not any(SQLITE_LOCKED in line for line in record)
            for line in record
            if PROBLEM_LINE.search(line)
        ]

    def stop(self) -> None:
        """Stop the server; fail when its log held a traceback or an ERROR line before."""
        problems = self.problems()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        if problems:
            pytest.fail(
                f"the Prefect server at {self.api} logged {len(problems)} problem lines "
                f"(full log: {self.log}):\n" + "\n".join(problems[:40])
            )


PREFECT_DATABASE = "prefect.db"
"""Where `prefect server start` keeps its SQLite database, in its PREFECT_HOME."""
_migrated: list[Path] = []
"""A copy of a database that a server of this process migrated, once there is one."""


def seed_database(home: Path) -> None:
    """Start `home`'s servers (a test's own, or the temporary ones `storyboard run` starts in
    its PREFECT_HOME) from an empty database this process has migrated already: a new SQLite
    database costs a server about 7 s of migrations (11 s to start instead of 4)."""
    if _migrated and _migrated[0].is_file() and not (home / PREFECT_DATABASE).exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(_migrated[0], home / PREFECT_DATABASE)


def _keep_migrated(home: Path) -> None:
    """A consistent copy of the database of the server in `home`, which has just started."""
    if _migrated:
        return
    kept = home / "migrated.db"
    with (
        closing(sqlite3.connect(home / PREFECT_DATABASE)) as live,
        closing(sqlite3.connect(kept)) as copy,
    ):
        live.backup(copy)
    _migrated.append(kept)


def start_prefect_server(home: Path, database_url: str | None = None) -> PrefectServer:
    """`prefect server start` on a free loopback port (`testkit/servers.py`), on SQLite in
    `home` (seeded, `seed_database`) or on the database at `database_url`, evaluating
    proactive triggers (`storyboard listen`'s) every second instead of every 5 s."""
    if database_url is None:
        seed_database(home)
    try:
        process, api, log = launch_prefect_server(
            home, database_url, {"PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S"}
        )
    except ServerDidNotStart as exc:
        pytest.fail(f"the Prefect server did not start:\n{exc}")
    if database_url is None:
        _keep_migrated(home)
    return PrefectServer(process, api, log)


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs, when installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@dataclass
class PostgresCluster:
    """A cluster in a temporary folder on a free loopback port, trusting local connections.
    PostgreSQL refuses to run as root, so as root it runs as Debian's `postgres` user."""

    bin: Path
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/prefect"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(  # noqa: S603 - fixed argument list
            command, capture_output=True, text=True, timeout=120, cwd=self.folder
        )
        if result.returncode != 0:
            pytest.fail(f"{program} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        data = self.folder / "data"
        self._run(
            "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"
        )
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder} -F"
        self._run(
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(self.folder / "postgres.log"),
            "-o",
            options,
            "-w",
            "start",
        )
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "prefect")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PostgresCluster:
    """A throw-away PostgreSQL cluster; the test is skipped where Debian's is not installed
    (`make test` installs it as root)."""
    programs = postgres_bin()
    if programs is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql)")
    # Outside pytest's own temporary folders, which other users cannot enter.
    folder = Path(tempfile.mkdtemp(prefix="storyboard-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres", group="postgres")
    cluster = PostgresCluster(programs, folder, free_port())
    cluster.start()
    return cluster


@contextmanager
def serving(app: Any, port: int) -> Iterator[str]:
    """`app` served by uvicorn on 127.0.0.1:`port` in a thread, as `storyboard studio` serves
    it; its address."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
