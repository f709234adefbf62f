"""Helpers shared by the tests: paths to the bundled demo, narrations made on the spot, running
the `storyboard` command as a user does, and the environments it runs in.

Helpers only: no tests and no fixtures here (fixtures live in `conftest.py`, fakes in
`testkit/fakes/`), so that no test module needs to import another."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import wave
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clients.media.audio import decode_audio
from domain.scene import Recording
from testkit.fakes.nvidia_server import VALID_KEY, FakeNvidia
from testkit.sources import DEMO_DIR
from testkit.wer import word_error_rate, words

__all__ = [
    "DEMO_DIR",
    "DEMO_WORDS",
    "PROJECT_ROOT",
    "STORYBOARD",
    "STUDIO_URL",
    "assert_clean",
    "copy_demo_recordings",
    "embedded_prefect",
    "nvidia_env",
    "read_manifest",
    "run_cli",
    "running_storyboard",
    "s3_env",
    "studio_page",
    "wait_for",
    "wait_for_value",
    "wait_until_idle",
    "word_error_rate",
    "words",
    "write_wav",
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_WORDS = {
    spoken.stem: spoken.read_text(encoding="utf-8").strip() for spoken in DEMO_DIR.glob("*.txt")
}
"""The words spoken in each demo narration, by scene id (`<scene id>.txt` beside it)."""

STORYBOARD = str(Path(sys.executable).with_name("storyboard"))
STUDIO_URL = "http://127.0.0.1:8700"
"""Where the tests' clients address a studio: a name it answers to (its bound address)."""


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


def recorded_anew(demo: str, output: Path) -> Path:
    """The demo recording `demo`'s narration recorded again into the WAV `output`: the same
    words in audio no other test reads (no transcript of it is cached yet), its silence at
    the end as long as `output`'s path makes it."""
    samples = decode_audio(DEMO_DIR / demo, 22_050) * 0.9
    silence = np.zeros(1 + zlib.crc32(str(output).encode()) % 2_000, np.float32)
    samples = np.concatenate([samples, silence])
    with wave.open(str(output), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(22_050)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return output


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument list
        [STORYBOARD, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "ERROR" not in output, output
    assert "CancelledError" not in output, output


def read_manifest(target: Path) -> pd.DataFrame:
    return pd.read_csv(target / "manifest.csv", keep_default_na=False)


RUNNER_POLL_S = "1"
"""PREFECT_RUNNER_POLL_FREQUENCY of a `storyboard serve` under test: how often it asks its server
for runs to execute (Prefect's default is every 10 s, which a test would spend waiting)."""


def embedded_prefect(env: dict[str, str]) -> dict[str, str]:
    """`env` without PREFECT_API_URL: the command starts Prefect's embedded API itself."""
    return {key: value for key, value in env.items() if key != "PREFECT_API_URL"}


SHARED_READINGS = ("transcripts", "languages", "models")
"""The cache's namespaces of what Whisper read (and the model it read with), not of anything
paid for: shared by the test caches that `share_readings` makes."""


def share_readings(cache: Path) -> Path:
    """`cache`, a test's own cache of generated images and clips, whose transcripts, detected
    languages and Whisper model are the session's (links to the session cache): a test that
    counts what generation costs reads each recording once per session instead of once per
    test, as a studio's warm cache would. Tests of transcription itself keep their own."""
    session_cache = Path(os.environ["STORYBOARD_CACHE_DIR"])
    cache.mkdir(parents=True, exist_ok=True)
    for namespace in SHARED_READINGS:
        (session_cache / namespace).mkdir(parents=True, exist_ok=True)
        if not (cache / namespace).exists():
            (cache / namespace).symlink_to(session_cache / namespace, target_is_directory=True)
    return cache


def nvidia_env(
    base: dict[str, str],
    fake: FakeNvidia,
    cache: Path,
    key: str = VALID_KEY,
    shared_readings: bool = True,
) -> dict[str, str]:
    """`base`, pointed at the fake NVIDIA API with `key`, caching in `cache` (whose readings of
    recordings are shared with the session unless `shared_readings` is off)."""
    if shared_readings:
        share_readings(cache)
    env = dict(base)
    env.update(
        NVIDIA_API_KEY=key,
        NVIDIA_API_BASE=fake.api_base,
        NVCF_API_BASE=fake.nvcf_base,
        STORYBOARD_CACHE_DIR=str(cache),
    )
    return env


def s3_env(cli_env: dict[str, str], endpoint: str) -> dict[str, str]:
    """`cli_env` with the test S3 credentials (from `s3_endpoint`) and `endpoint`."""
    return {
        **cli_env,
        **{
            k: os.environ[k]
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
        },
        "AWS_ENDPOINT_URL": endpoint,
    }


def wait_for(condition: Callable[[], Any], seconds: float, every: float = 0.5) -> bool:
    """Whether `condition()` came true within `seconds` (looked at every `every` seconds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


def wait_for_value(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    """What `condition()` returned once it was truthy; AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.3)
    raise AssertionError(f"not within {seconds} s: {what}")


@contextmanager
def running_storyboard(
    args: list[str], env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen[str]]:
    """`storyboard ARGS` running in the background; interrupted (so that it stops its
    temporary Prefect server too) if it is still running when the block ends."""
    process = subprocess.Popen(  # noqa: S603 - fixed argument list
        [STORYBOARD, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate(timeout=30)


def copy_demo_recordings(folder: Path, names: Iterable[str]) -> Path:
    """`folder` made, holding the demo's recordings `names`."""
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(DEMO_DIR / name, folder / name)
    return folder


def studio_page(client: Any, board: str) -> tuple[str, str]:
    """The studio's page of `board` (through a Starlette TestClient) and its CSRF token."""
    page = client.get("/storyboard", params={"board": board})
    assert page.status_code == 200, page.text
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text)
    assert found is not None
    return str(page.text), found.group(1)


def wait_until_idle(client: Any, board: str, timeout_s: float) -> dict[str, Any]:
    """The studio's render status of `board` once nothing renders (AssertionError after
    `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status: dict[str, Any] = client.get("/storyboard/render", params={"board": board}).json()
        if not status["busy"] or time.monotonic() > deadline:
            assert not status["busy"], status
            return status
        time.sleep(0.2)


def speak(path: Path, text: str, voice: str = "en", speed: int = 220) -> Path:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    subprocess.run(  # noqa: S603 - fixed argument list
        [espeak, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True
    )
    return path


def recording(path: Path, order: int) -> Recording:
    """A scene of `path` as ingest makes it (its digest stands in for the file's)."""
    return Recording(path.stem, order, path, path.as_uri(), f"{order:064x}")


BUSY_STATUSES = frozenset({429, 502, 503, 504})
"""A busy Prefect server's answers (503 while its SQLite database is locked)."""


def prefect_api(method: str, url: str, **options: Any) -> Any:
    """A request to a Prefect API made as Prefect's own client makes it: asked again, for up to
    a minute, while the server answers busy; any other answer is returned."""
    import httpx

    deadline = time.monotonic() + 60.0
    while True:
        response = httpx.request(method, url, timeout=30, **options)
        if response.status_code not in BUSY_STATUSES or time.monotonic() > deadline:
            return response
        time.sleep(0.5)
