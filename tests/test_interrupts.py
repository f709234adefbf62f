"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM during a run
stop it within seconds, with one line, exit 130 / 143, and no process left behind: with the
thread runner and with a local Dask cluster, on the temporary Prefect server the command
starts for itself. Each signal is sent to one runner: the two signals take the same way out
(`cli/interrupts.py`) and differ in their status and line only, which each case checks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import DEMO_DIR, STORYBOARD, embedded_prefect

pytestmark = pytest.mark.slow
STOP_BOUND_S = 30.0  # generous for a loaded CI machine; measured here: 3 to 5 s


def descendants(root: int) -> set[int]:
    """Every living process below `root`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        found |= children
        frontier = children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def long_storyboard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    for take in range(1, 5):
        for recording in sorted(DEMO_DIR.glob("*.ogg")):
            shutil.copy(recording, folder / f"take{take}_{recording.name}")
    return folder


@pytest.mark.parametrize(
    ("runner", "signum", "status"),
    [("thread", signal.SIGINT, 130), ("dask", signal.SIGTERM, 143)],
)
def test_a_signal_to_the_process_group_stops_the_run_at_once(
    runner: str,
    signum: int,
    status: int,
    long_storyboard: Path,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    log = tmp_path / "output.log"
    with log.open("w") as sink:
        process = subprocess.Popen(  # noqa: S603 - fixed argument list
            [
                STORYBOARD,
                "run",
                str(long_storyboard),
                "--out",
                str(tmp_path / "out"),
                "--refresh",
                "--task-runner",
                runner,
            ],
            env=embedded_prefect(cli_env),
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 240
    while "Task run 'generate" not in log.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.2)
    children = descendants(process.pid)
    assert children, "the run has started its server (and workers)"

    os.killpg(process.pid, signum)
    signalled = time.monotonic()
    process.wait(timeout=120)
    stopped_after = time.monotonic() - signalled

    output = log.read_text()
    assert process.returncode == status, output
    assert stopped_after < STOP_BOUND_S, f"took {stopped_after:.1f} s to stop"
    after_signal = output.rsplit("Task run 'generate", 1)[1]
    assert "Traceback" not in output and "ERROR" not in after_signal, output
    expected = (
        "storyboard: interrupted" if signum == signal.SIGINT else "storyboard: stopped by SIGTERM"
    )
    assert output.strip().splitlines()[-1] == expected, output
    time.sleep(1.0)
    left = [pid for pid in children if alive(pid)]
    assert not left, f"processes left behind: {left}"
    assert not (tmp_path / "out" / "run.json").exists(), "an interrupted run must not look done"


def test_a_run_killed_outright_leaves_no_temporary_server_behind(
    long_storyboard: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`kill -9` reaches no handler: the temporary server (in a session of its own) notices
    that its run is gone and stops itself."""
    log = tmp_path / "output.log"
    with log.open("w") as sink:
        process = subprocess.Popen(  # noqa: S603 - fixed argument list
            [STORYBOARD, "run", str(long_storyboard), "--out", str(tmp_path / "out"), "--refresh"],
            env=embedded_prefect(cli_env),
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )

    def servers() -> list[int]:
        return [
            pid
            for pid in descendants(process.pid)
            if b"server_watchdog" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]

    deadline = time.monotonic() + 120
    while not servers() and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.2)
    (server,) = servers()
    time.sleep(2.0)  # the server is up and watching

    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + STOP_BOUND_S
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(server), "the temporary server outlived its run"
