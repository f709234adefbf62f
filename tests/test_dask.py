"""`--task-runner dask` and `dask=ADDRESS`: the same storyboard as the threaded run, with its
tasks on Dask worker processes, and one API budget shared by every worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest

from domain.layout import MODELS
from testkit.fakes.nvidia_server import FakeNvidia, Faults
from tests.helpers import DEMO_DIR, assert_clean, nvidia_env, read_manifest, run_cli
from tests.servers import free_port

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An existing Dask cluster: a scheduler and two worker processes, as an operator runs it."""
    from distributed import Client

    workdir = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "warning"}
    scheduler = subprocess.Popen(  # noqa: S603 - fixed argument list
        [
            str(BIN / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            address.rsplit(":")[-1],
            "--dashboard-address",
            ":0",
        ],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = subprocess.Popen(  # noqa: S603 - fixed argument list
        [
            str(BIN / "dask"),
            "worker",
            address,
            "--nworkers",
            "2",
            "--nthreads",
            "2",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
        ],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in (workers, scheduler):
            process.terminate()
            process.wait(timeout=60)


def task_prefixes(address: str) -> set[str]:
    """The kinds of task the scheduler has run."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        return set(
            client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        )


def assert_same_storyboard(dask_out: Path, threaded_out: Path) -> None:
    dask_manifest, threaded_manifest = read_manifest(dask_out), read_manifest(threaded_out)
    pd.testing.assert_frame_equal(dask_manifest, threaded_manifest)
    for image in dask_manifest["image_path"]:
        assert (dask_out / image).read_bytes() == (threaded_out / image).read_bytes()


def test_an_existing_cluster_renders_the_same_storyboard_as_threads(
    dask_cluster: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Two worker processes of a cluster started apart from the run, on a cache of its own
    (the session's Whisper model linked in): every scene is read and drawn on the workers.
    Then the same storyboard on threads, its pictures drawn again (`--refresh`) from the
    transcripts the workers read: the same manifest and the same pictures."""
    session_models = Path(cli_env["STORYBOARD_CACHE_DIR"]) / MODELS
    session_models.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / MODELS).symlink_to(session_models, target_is_directory=True)
    env = {**cli_env, "STORYBOARD_CACHE_DIR": str(tmp_path / "cache")}
    command = ["run", str(DEMO_DIR), "--out", "out", "--task-runner", f"dask={dask_cluster}"]
    result = run_cli(command, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert_clean(result)
    report = pd.read_json(tmp_path / "out" / "run.json", typ="series")
    assert report["task_runner"] == f"dask={dask_cluster}"
    ran = task_prefixes(dask_cluster)
    assert {"transcribe", "generate"} <= ran, ran

    threaded = run_cli(["run", str(DEMO_DIR), "--out", "threaded", "--refresh"], env, tmp_path)
    assert threaded.returncode == 0, threaded.stderr
    assert_same_storyboard(tmp_path / "out", tmp_path / "threaded")


def test_every_worker_draws_from_one_request_budget(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """`--task-runner dask`: a local cluster of two worker processes started for the run, 120
    requests a minute between them: requests 0.5 s apart, not two at a time as each worker's
    own budget would allow. (Local workers inherit NVIDIA_API_KEY; an operator's workers need
    it in their own environment.)"""
    source = tmp_path / "lion"
    shutil.copytree(DEMO_DIR, source)
    config = tmp_path / "budget.yaml"
    config.write_text(
        "generation:\n  requests_per_minute: 120\ndask:\n  workers: 2\n  threads_per_worker: 3\n"
    )
    with FakeNvidia(Faults()) as fake:
        env = nvidia_env(cli_env, fake, tmp_path / "cache")
        started = time.monotonic()
        result = run_cli(
            ["run", str(source), "--out", "out", "--config", str(config), "--task-runner", "dask"],
            env,
            tmp_path,
        )
        times = sorted(fake.stats.request_times)
    assert result.returncode == 0, result.stderr
    assert len(times) == 10 and time.monotonic() - started > 4.5
    assert read_manifest(tmp_path / "out")["status"].tolist() == ["ok"] * 5
    assert pd.read_json(tmp_path / "out" / "run.json", typ="series")["task_runner"] == "dask"
    gaps = [later - earlier for earlier, later in pairwise(times)]
    # Two budgets of their own would let both workers send at the same instant; one shared
    # budget keeps every pair apart and the ten requests at its pace, give or take the jitter
    # of a busy machine.
    assert min(gaps) > 0.2, gaps
    assert times[-1] - times[0] > 9 * 0.5 * 0.9, gaps
