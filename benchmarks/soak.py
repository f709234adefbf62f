"""Soak: a whole storyboard of many scenes against the fake NVIDIA API, with latency and faults.

    .venv/bin/python -m benchmarks.soak [--scenes 200] [--latency 0.3] [--faults 0.2] [--rpm 600]
                                        [--task-runner thread|dask|dask=ADDRESS]

Builds a storyboard of `--scenes` recordings (the demo narrations, repeated under new names),
renders it with `storyboard run --backend nvidia` against a loopback fake that answers in
`--latency` seconds, fails `--faults` of the requests transiently and enforces `--rpm` itself,
then renders it again. Prints wall time against the rate-limit bound, peak memory, and the
counts of requests, retries and cache hits; the second run should send nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from testkit.fakes.nvidia_server import VALID_KEY, FakeNvidia, Faults, Stats

ROOT = Path(__file__).resolve().parents[1]
AUDIO = {".ogg", ".mp3", ".m4a", ".wav", ".flac", ".webm"}
"""The demo's recordings (beside them are their reference transcripts, which are not scenes)."""


Run = tuple[int, float, dict[str, Any], int]
"""One render: exit code, wall seconds, its run.json, and generation requests sent so far."""


def parse_arguments() -> argparse.Namespace:
    """The soak's options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--faults", type=float, default=0.2)
    parser.add_argument("--rpm", type=float, default=600.0)
    parser.add_argument("--task-runner", default="thread")
    return parser.parse_args()


def prepare_storyboard(folder: Path, arguments: argparse.Namespace) -> tuple[Path, Path]:
    """`--scenes` copies of the demo recordings and a config for them, under `folder`."""
    demo = sorted(p for p in (ROOT / "storyboards" / "demo").iterdir() if p.suffix in AUDIO)
    source = folder / "soak"
    source.mkdir()
    for index in range(arguments.scenes):
        recording = demo[index % len(demo)]
        shutil.copy(recording, source / f"scene_{index + 1}{recording.suffix}")
    config = folder / "config.yaml"
    config.write_text(
        f"generation:\n  requests_per_minute: {arguments.rpm}\n  concurrency: 8\n"
        "  max_attempts: 10\nassembly:\n  fps: 12\n"
    )
    return source, config


def run_environment(fake: FakeNvidia, folder: Path) -> dict[str, str]:
    """The environment of a `storyboard run` against `fake`, caching under `folder`."""
    return {
        **os.environ,
        "NVIDIA_API_KEY": VALID_KEY,
        "NVIDIA_API_BASE": fake.api_base,
        "NVCF_API_BASE": fake.nvcf_base,
        "STORYBOARD_CACHE_DIR": str(folder / "cache"),
        "PREFECT_HOME": str(folder / "prefect"),
    }


def run_soak(arguments: argparse.Namespace) -> tuple[list[Run], Stats, float]:
    """Both renders against the fake, its stats, and the peak memory (MB) of a child."""
    with tempfile.TemporaryDirectory(prefix="soak-") as name:
        folder = Path(name)
        source, config = prepare_storyboard(folder, arguments)
        faults = Faults(
            latency_s=arguments.latency,
            transient_rate=arguments.faults,
            rate_limit_per_minute=int(arguments.rpm),
        )
        with FakeNvidia(faults) as fake:
            env = run_environment(fake, folder)
            runs: list[Run] = []
            for attempt in (1, 2):
                target = folder / f"out{attempt}"
                started = time.perf_counter()
                completed = subprocess.run(  # noqa: S603 - fixed argument list
                    [
                        str(Path(sys.executable).with_name("storyboard")),
                        "run",
                        str(source),
                        "--out",
                        str(target),
                        "--config",
                        str(config),
                        "--backend",
                        "nvidia",
                        "--task-runner",
                        arguments.task_runner,
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                wall = time.perf_counter() - started
                report = json.loads((target / "run.json").read_text())
                runs.append((completed.returncode, wall, report, fake.stats.generation_requests))
            stats = fake.stats
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return runs, stats, peak


def print_report(arguments: argparse.Namespace, runs: list[Run], stats: Stats, peak: float) -> None:
    """Wall time against the rate-limit bound, requests, retries, cache hits and memory."""
    (code1, wall1, report1, sent1), (code2, wall2, report2, sent2) = runs
    needed = 2 * arguments.scenes
    bound = (needed - 1) * 60 / arguments.rpm
    print(
        f"scenes                {arguments.scenes} (latency {arguments.latency} s, "
        f"{arguments.faults:.0%} transient faults, {arguments.rpm:g} requests/min, "
        f"task runner {arguments.task_runner})"
    )
    print(f"first run             exit {code1}, {wall1:.1f} s wall, scenes {report1['scenes']}")
    print(
        f"  generate stage      {report1['stages']['generate']:.1f} s against a rate-limit "
        f"bound of {bound:.1f} s for {needed} calls"
    )
    faulted, limited = stats.injected_faults, stats.rate_limited
    print(
        f"  requests            {sent1} sent = {needed} needed + {sent1 - needed} retries "
        f"({faulted} faults injected, {limited} rate-limited 429s)"
    )
    print(f"  stages              {report1['stages']}")
    print(
        f"second run            exit {code2}, {wall2:.1f} s wall, {sent2 - sent1} requests, "
        f"{report2['cache_hits']} cache hits"
    )
    print(f"peak memory           {peak:.0f} MB (largest process)")
    print(f"contract violations   {len(stats.violations)}")


def main() -> None:
    """Parse the options, run the soak and print its report."""
    arguments = parse_arguments()
    runs, stats, peak = run_soak(arguments)
    print_report(arguments, runs, stats, peak)


if __name__ == "__main__":
    main()
