"""Iterate: how long the rework loop takes on a long storyboard.

    .venv/bin/python -m benchmarks.iterate [--scenes 200] [--latency 0.3] [--rpm 600]

Renders a storyboard of `--scenes` recordings (the demo narrations, repeated under new names)
with `storyboard run --backend nvidia` against the loopback fake, then renders it again
unchanged into the same target, then replaces the middle scene's recording with another
narration cut to the same length and renders once more. Prints each run's wall time, its
share of the first, what it encoded and requested, and checks that the video kept its length
while the changed scene's frames changed and the others did not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.soak import prepare_storyboard, run_environment
from clients.media.audio import decode_audio
from clients.media.ffmpeg import probe
from testkit.fakes.nvidia_server import FakeNvidia, Faults

RATE = 48_000
"""The assembly's sample rate (`assembly.sample_rate`'s default)."""


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--rpm", type=float, default=600.0)
    return parser.parse_args()


def retake(recording: Path, other: Path) -> None:
    """Overwrite `recording` with the narration of `other`, cut or padded to exactly its
    length at the storyboard's sample rate (a take of the same length)."""
    length = len(decode_audio(recording, RATE))
    samples = decode_audio(other, RATE)[:length]
    samples = np.pad(samples, (0, length - len(samples)))
    recording.unlink()
    with wave.open(str(recording.with_suffix(".wav")), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def render(source: Path, target: Path, config: Path, env: dict[str, str]) -> tuple[float, Any]:
    """One `storyboard run`: its wall seconds and its run.json."""
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
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(
            f"storyboard run exited {completed.returncode}: {completed.stderr[-2000:]}"
        )
    return wall, json.loads((target / "run.json").read_text())


def frames_between(video: Path, start_s: float, end_s: float) -> np.ndarray[Any, Any]:
    """The frames of `video` shown from `start_s` to `end_s`, as one array."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = [
            frame.to_ndarray(format="rgb24")
            for frame in container.decode(stream)
            if frame.time is not None and start_s <= frame.time < end_s
        ]
    return np.stack(frames).astype(np.int16)


def compare(
    before: Path, after: Path, span: tuple[float, float], other: tuple[float, float]
) -> str:
    """The length check and how much the changed and an unchanged scene's frames moved."""
    lengths = probe(before).duration_s, probe(after).duration_s
    changed = np.abs(frames_between(before, *span) - frames_between(after, *span)).mean()
    kept = np.abs(frames_between(before, *other) - frames_between(after, *other)).mean()
    return (
        f"video length {lengths[0]:.3f} s -> {lengths[1]:.3f} s; changed scene's frames differ "
        f"by {changed:.1f}/255 on average, an untouched scene's by {kept:.1f}/255"
    )


def main() -> None:
    arguments = parse_arguments()
    with tempfile.TemporaryDirectory(prefix="iterate-") as name:
        folder = Path(name)
        source, config = prepare_storyboard(folder, arguments)
        faults = Faults(latency_s=arguments.latency, rate_limit_per_minute=int(arguments.rpm))
        with FakeNvidia(faults) as fake:
            env = run_environment(fake, folder)
            target = folder / "out"
            runs = [("first run", *render(source, target, config, env), fake.stats.jobs)]
            unchanged = render(source, target, config, env)
            runs.append(("unchanged re-run", *unchanged, fake.stats.jobs))
            before = folder / "before.mp4"
            (target / "storyboard.mp4").rename(before)
            middle = arguments.scenes // 2
            scene = next(source.glob(f"scene_{middle}.*"))
            retake(scene, next(source.glob(f"scene_{middle + 1}.*")))
            rerecorded = render(source, target, config, env)
            runs.append(("one scene re-recorded", *rerecorded, fake.stats.jobs))
        after, manifest = target / "storyboard.mp4", target / "manifest.csv"
        print_report(arguments, runs, before, after, manifest, middle)


def scene_span(manifest: Path, scene_id: str) -> tuple[float, float]:
    import pandas as pd

    frame = pd.read_csv(manifest)
    row = frame[frame["scene_id"] == scene_id].iloc[0]
    return float(row["start_s"]), float(row["end_s"])


def print_report(
    arguments: argparse.Namespace,
    runs: list[tuple[str, float, Any, int]],
    before: Path,
    after: Path,
    manifest: Path,
    middle: int,
) -> None:
    first = runs[0][1]
    print(
        f"scenes                 {arguments.scenes} (fake NVIDIA API, {arguments.latency} s "
        f"latency, {arguments.rpm:g} requests/min)"
    )
    jobs_before = 0
    for label, wall, report, jobs in runs:
        share = wall / first
        print(
            f"{label:22} {wall:7.1f} s  {share:6.1%} of the first  jobs {jobs - jobs_before:4d}  "
            f"assembly {report.get('assembly')}  stages {report['stages']}"
        )
        jobs_before = jobs
    span = scene_span(manifest, f"scene_{middle}")
    other = scene_span(manifest, f"scene_{middle + 2}")
    print(compare(before, after, span, other))


if __name__ == "__main__":
    main()
