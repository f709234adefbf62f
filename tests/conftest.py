"""Shared fixtures. Prefect and the content cache are pointed at a per-session temporary
folder before any project module (and so Prefect) is imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="storyboard-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["STORYBOARD_CACHE_DIR"] = str(_SESSION_HOME / "cache")
os.environ.pop("NVIDIA_API_KEY", None)
os.environ.pop("PREFECT_API_URL", None)

from flows.runtime import configure_environment  # noqa: E402
from testkit.fakes.tiny_pipelines import Models, build_models  # noqa: E402
from tests.helpers import RUNNER_POLL_S, run_cli  # noqa: E402
from tests.servers import free_port, seed_database, start_prefect_server  # noqa: E402

configure_environment()


@pytest.fixture(scope="session")
def session_home() -> Iterator[Path]:
    yield _SESSION_HOME
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def cache_dir(session_home: Path) -> Path:
    return Path(os.environ["STORYBOARD_CACHE_DIR"])


@pytest.fixture(scope="session")
def prefect_api(session_home: Path) -> Iterator[str]:
    """One Prefect server for the command-line tests, as a team runs one: each `storyboard`
    process then reports to it instead of starting a temporary server of its own (about 6 s
    each). The bundled demo (`demo_run`) and the tests of the temporary server still start
    one, in the session's PREFECT_HOME, on a database the session server has migrated."""
    server = start_prefect_server(session_home / "prefect-server")
    seed_database(session_home / "prefect")
    yield server.api
    server.stop()


@pytest.fixture
def cli_env(session_home: Path, prefect_api: str) -> dict[str, str]:
    """The environment for running the `storyboard` command as a user would."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NVIDIA_API_KEY", "PREFECT_API_URL"} and not key.startswith("PYTEST")
    }
    env["PREFECT_HOME"] = str(session_home / "prefect")
    env["PREFECT_API_URL"] = prefect_api
    env["STORYBOARD_CACHE_DIR"] = str(session_home / "cache")
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = RUNNER_POLL_S
    return env


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 protocol server on loopback (moto in server mode)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {key: os.environ.get(key) for key in S3_ENV}
    os.environ.update(S3_ENV, AWS_ENDPOINT_URL=endpoint)
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "",
}


@pytest.fixture(scope="session")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory, session_home: Path, prefect_api: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`storyboard demo`, run once for every test that looks at its outputs."""
    env = dict(os.environ)
    env.pop("NVIDIA_API_KEY", None)
    env.pop("PREFECT_API_URL", None)
    workdir = tmp_path_factory.mktemp("demo")
    return run_cli(["demo", "--out", "out"], env, workdir), workdir / "out"


LONGEST_FIRST = (
    "test_listen.py",
    "test_watch.py",
    "test_packing_truth.py",
    "test_cli.py",
    "test_dask.py",
    "test_incremental_assembly.py",
    "test_nothing_lost.py",
    "test_interrupts.py",
    "test_shared_cache.py",
    "test_characters.py",
    "test_nvidia_pipeline.py",
    "test_scheduled_runs.py",
    "test_local_backend.py",
    "test_local_video_families.py",
    "test_prefect_server.py",
    "test_s3.py",
    "test_image_approval.py",
    "test_hostile_inputs.py",
    "test_studio_approval.py",
    "test_transcribe.py",
    "test_studio_served.py",
    "test_openai_whisper.py",
    "test_safety.py",
    "test_faults.py",
    "test_cache_prune.py",
    "test_bad_input.py",
    "test_scene_language.py",
    "test_rework.py",
    "test_studio_api.py",
)
"""The files that take longest, run first: with `pytest -n 2 --dist loadfile` (make test) the
workers then finish together instead of one waiting on a long file at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """The tiny diffusers pipelines (`testkit/fakes/tiny_pipelines.py`), built and saved once
    per test session."""
    pytest.importorskip("diffusers", reason="--backend local needs the `local` extra")
    return build_models(tmp_path_factory.mktemp("tiny-models"))
