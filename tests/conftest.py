"""Shared fixtures. Prefect and the content cache are pointed at a per-session temporary
folder before any project module (and so Prefect) is imported."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="storyboard-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["STORYBOARD_CACHE_DIR"] = str(_SESSION_HOME / "cache")
os.environ.pop("NVIDIA_API_KEY", None)
os.environ.pop("PREFECT_API_URL", None)

from flows.runtime import configure_environment  # noqa: E402
from tests.servers import free_port, start_prefect_server  # noqa: E402

configure_environment()

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = PROJECT_ROOT / "storyboards" / "demo"
DEMO_WORDS = {
    spoken.stem: spoken.read_text(encoding="utf-8").strip() for spoken in DEMO_DIR.glob("*.txt")
}
"""The words spoken in each demo narration, by scene id (`<scene id>.txt` beside it)."""


def write_wav(path: Path, seconds: float, frequency: float = 0.0, rate: int = 16_000) -> Path:
    """A mono 16-bit WAV: a sine tone at `frequency`, or silence when it is 0."""
    count = round(seconds * rate)
    t = np.arange(count) / rate
    samples = 0.3 * np.sin(2 * math.pi * frequency * t) if frequency else np.zeros(count)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


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
    each). The bundled demo (`demo_run`) still runs on the embedded API."""
    server = start_prefect_server(session_home / "prefect-server")
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
    return env


def embedded_prefect(env: dict[str, str]) -> dict[str, str]:
    """`env` without PREFECT_API_URL: the command starts Prefect's embedded API itself."""
    return {key: value for key, value in env.items() if key != "PREFECT_API_URL"}


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
    tmp_path_factory: pytest.TempPathFactory, session_home: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`storyboard demo`, run once for every test that looks at its outputs."""
    from tests.test_cli import run_cli

    env = dict(os.environ)
    env.pop("NVIDIA_API_KEY", None)
    env.pop("PREFECT_API_URL", None)
    workdir = tmp_path_factory.mktemp("demo")
    return run_cli(["demo", "--out", "out"], env, workdir), workdir / "out"
