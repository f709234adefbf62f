"""A run killed with SIGKILL mid-way, then started again, pays for nothing it had received."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients.media.ffmpeg import probe
from testkit.fakes.nvidia_server import VALID_KEY, FakeNvidia, Faults
from tests.helpers import DEMO_DIR, run_cli, share_readings

pytestmark = pytest.mark.slow


def _stored_results(cache: Path) -> int:
    return sum(1 for _ in cache.glob("images/*/*/entry.json")) + sum(
        1 for _ in cache.glob("clips/*/*/entry.json")
    )


def test_a_killed_run_resumes_without_paying_twice(tmp_path: Path, cli_env: dict[str, str]) -> None:
    source = tmp_path / "story"
    shutil.copytree(DEMO_DIR, source)
    config = tmp_path / "slow.yaml"
    config.write_text("generation:\n  requests_per_minute: 6000\n  concurrency: 1\n")
    cache = tmp_path / "cache"
    with FakeNvidia(Faults(latency_s=1.0)) as fake:
        env = {
            **cli_env,
            "NVIDIA_API_KEY": VALID_KEY,
            "NVIDIA_API_BASE": fake.api_base,
            "NVCF_API_BASE": fake.nvcf_base,
            "STORYBOARD_CACHE_DIR": str(share_readings(cache)),
        }
        args = ["run", str(source), "--out", str(tmp_path / "out"), "--config", str(config)]
        process = subprocess.Popen(  # noqa: S603 - fixed argument list
            [str(Path(sys.executable).with_name("storyboard")), *args],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while fake.stats.generation_requests < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        sent_before = fake.stats.generation_requests
        received = _stored_results(cache)
        assert 3 <= received < 10, "killed in the middle of generation"
        assert not (tmp_path / "out" / "storyboard.mp4").exists()

        resumed = run_cli(args, env, tmp_path)
        assert resumed.returncode == 0, resumed.stderr
    assert fake.stats.generation_requests - sent_before == 10 - received
    assert _stored_results(cache) == 10
    for clip in cache.glob("clips/*/*/clip.mp4"):
        assert probe(clip).frame_count == 25, "every cached clip is whole"
