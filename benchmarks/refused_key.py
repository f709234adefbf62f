"""How soon a refused API key stops a run: `storyboard run` with a wrong key, end to end.

    .venv/bin/python -m benchmarks.refused_key [--scenes 9]

Builds a storyboard of `--scenes` scenes from the demo's recordings, starts the loopback fake
of NVIDIA's API, runs the command line with a key it refuses, and prints the exit status, the
wall seconds from start to exit, and the requests the fake saw (the goal: exit 1 within 10 s,
no paid request: the key is checked with a status poll of a request id never issued). The
first run of a fresh PREFECT_HOME also migrates Prefect's database; `--warm` runs once before
timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testkit.fakes.nvidia_server import FakeNvidia

DEMO = Path(__file__).resolve().parent.parent / "storyboards" / "demo"
RECORDINGS = (".ogg", ".mp3", ".m4a", ".wav", ".flac", ".webm")


def storyboard_of(scenes: int, folder: Path) -> Path:
    demo = sorted(path for path in DEMO.iterdir() if path.suffix in RECORDINGS)
    source = folder / "refused"
    source.mkdir()
    for index in range(scenes):
        recording = demo[index % len(demo)]
        shutil.copy(recording, source / f"scene_{index + 1}{recording.suffix}")
    return source


def run_once(source: Path, folder: Path, fake: FakeNvidia) -> tuple[int, float]:
    env = dict(os.environ, NVIDIA_API_KEY="nvapi-refused-by-the-fake")
    env |= dict(NVIDIA_API_BASE=fake.api_base, NVCF_API_BASE=fake.nvcf_base)
    env |= dict(STORYBOARD_CACHE_DIR=str(folder / "cache"), PREFECT_HOME=str(folder / "prefect"))
    env.pop("PREFECT_API_URL", None)
    command = [str(Path(sys.executable).parent / "storyboard"), "run", str(source)]
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [*command, "--out", str(folder / "out")], env=env, capture_output=True, text=True
    )
    return result.returncode, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=9)
    parser.add_argument("--warm", action="store_true", help="one untimed run first")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as name, FakeNvidia() as fake:
        folder = Path(name)
        source = storyboard_of(arguments.scenes, folder)
        if arguments.warm:
            run_once(source, folder, fake)
        before, checks = fake.stats.total_requests, fake.stats.key_checks
        status, seconds = run_once(source, folder, fake)
        requests = fake.stats.total_requests - before
        checks = fake.stats.key_checks - checks
    print(f"scenes       {arguments.scenes}")
    print(f"exit         {status}")
    print(f"wall time    {seconds:.1f} s (goal: within 10 s)")
    print(f"paid         {requests} requests (goal: 0)")
    print(f"key checks   {checks}")


if __name__ == "__main__":
    main()
