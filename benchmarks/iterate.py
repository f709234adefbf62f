"""Iterate: how long the rework loop takes on a long storyboard, retakes of any length included.

    .venv/bin/python -m benchmarks.iterate [--scenes 24] [--latency 0.3] [--rpm 600]

Renders a storyboard of `--scenes` recordings (the demo narrations, repeated under new names)
with `storyboard run --backend nvidia` against the loopback fake, then into the same target:
unchanged, with the middle scene re-recorded at the same length, shorter and longer. Prints
each run's flow time (`run.json`'s `stages.total`) and wall time with their share of the
first run's, what it encoded and requested; checks that the re-recorded scene's span is its
new narration's and that an untouched later scene's frames are identical; and times a bare
`ffmpeg -c:v libx264 -preset veryfast -c:a aac` re-encode of the first video beside the
first run's assembly stage (issue 33's goal: at most 1.3x).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd

from benchmarks.soak import prepare_storyboard, run_environment
from clients.media.audio import decode_audio
from clients.media.ffmpeg import ffmpeg_executable
from testkit.fakes.nvidia_server import FakeNvidia, Faults

RATE = 48_000
"""The assembly's sample rate (`assembly.sample_rate`'s default)."""
RETAKES = (("same length", 1.0), ("shorter", 0.5), ("longer", 1.6))
"""Each retake of the middle scene: its length as a share of the scene's first recording."""


@dataclass(frozen=True)
class Run:
    label: str
    wall_s: float
    report: dict[str, Any]
    jobs: int
    video: Path
    manifest: pd.DataFrame


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--rpm", type=float, default=600.0)
    return parser.parse_args()


def retake(recording: Path, other: Path, samples_long: int) -> float:
    """Replace `recording` with the narration of `other` (repeated when it is too short),
    `samples_long` samples long; its new length in seconds."""
    length = samples_long
    spoken = decode_audio(other, RATE)
    samples = np.tile(spoken, length // len(spoken) + 1)[:length]
    for old in recording.parent.glob(f"{recording.stem}.*"):
        old.unlink()
    with wave.open(str(recording.with_suffix(".wav")), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return length / RATE


def render(label: str, source: Path, folder: Path, env: dict[str, str], fake: FakeNvidia) -> Run:
    """One `storyboard run` into `folder/out`; its video is kept beside it under `label`."""
    target, config = folder / "out", folder / "config.yaml"
    command = [str(Path(sys.executable).with_name("storyboard")), "run", str(source)]
    command += ["--out", str(target), "--config", str(config), "--backend", "nvidia"]
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        reason = completed.stderr[-2000:]
        raise SystemExit(f"storyboard run exited {completed.returncode}: {reason}")
    video = folder / f"{label.replace(' ', '-')}.mp4"
    shutil.copy(target / "storyboard.mp4", video)
    report = json.loads((target / "run.json").read_text())
    manifest = pd.read_csv(target / "manifest.csv").set_index("scene_id")
    return Run(label, wall, report, fake.stats.jobs, video, manifest)


def frames_between(video: Path, start_s: float, end_s: float) -> np.ndarray[Any, Any]:
    """The frames of `video` shown from `start_s` to `end_s`, as one array."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        half_frame = 0.5 / float(stream.average_rate or 24)  # spans are rounded to 1 ms
        frames = [
            frame.to_ndarray(format="rgb24")
            for frame in container.decode(stream)
            if frame.time is not None and start_s - half_frame <= frame.time < end_s - half_frame
        ]
    return np.stack(frames).astype(np.int16)


def span(run: Run, scene_id: str) -> tuple[float, float]:
    row = run.manifest.loc[scene_id]
    return float(row["start_s"]), float(row["end_s"])


def check_retake(first: Run, retaken: Run, scene_id: str, later: str, seconds: float) -> str:
    """The re-recorded scene's span against its narration; an untouched scene's frames."""
    start, end = span(retaken, scene_id)
    kept = np.array_equal(
        frames_between(first.video, *span(first, later)),
        frames_between(retaken.video, *span(retaken, later)),
    )
    return (
        f"span {end - start:.3f} s for {seconds:.3f} s of narration; "
        f"{later}'s frames {'identical' if kept else 'CHANGED'}"
    )


def bare_reencode_s(video: Path, folder: Path) -> float:
    """Seconds for ffmpeg alone to re-encode `video` as the assembly's codecs would."""
    command = [ffmpeg_executable(), "-y", "-loglevel", "error", "-i", str(video)]
    command += ["-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(folder / "bare.mp4")]
    started = time.perf_counter()
    subprocess.run(command, check=True)  # noqa: S603 - fixed argument list
    return time.perf_counter() - started


def main() -> None:
    arguments = parse_arguments()
    with tempfile.TemporaryDirectory(prefix="iterate-") as name:
        folder = Path(name)
        source, _ = prepare_storyboard(folder, arguments)
        faults = Faults(latency_s=arguments.latency, rate_limit_per_minute=int(arguments.rpm))
        middle = f"scene_{arguments.scenes // 2}"
        later = f"scene_{arguments.scenes // 2 + 2}"
        with FakeNvidia(faults) as fake:
            env = run_environment(fake, folder)
            first = render("first run", source, folder, env, fake)
            runs = [first, render("unchanged", source, folder, env, fake)]
            checks = []
            original = len(decode_audio(next(source.glob(f"{middle}.*")), RATE))
            other = next(source.glob(f"scene_{arguments.scenes // 2 + 1}.*"))
            for label, share in RETAKES:
                scene = next(source.glob(f"{middle}.*"))
                seconds = retake(scene, other, round(original * share))
                runs.append(render(f"retake {label}", source, folder, env, fake))
                checks.append(check_retake(first, runs[-1], middle, later, seconds))
        print_report(arguments, runs, checks)
        assembly_s = float(first.report["stages"]["assemble"])
        bare_s = bare_reencode_s(first.video, folder)
        print(
            f"first assembly {assembly_s:.1f} s; bare ffmpeg re-encode of its video {bare_s:.1f} s"
            f" ({assembly_s / bare_s:.2f}x)"
        )


def print_report(arguments: argparse.Namespace, runs: list[Run], checks: list[str]) -> None:
    first = runs[0]
    print(
        f"scenes {arguments.scenes} (fake NVIDIA API, {arguments.latency} s latency, "
        f"{arguments.rpm:g} requests/min)"
    )
    jobs_before = 0
    for run in runs:
        flow_s = float(run.report["stages"]["total"])
        flow_share = flow_s / float(first.report["stages"]["total"])
        print(
            f"{run.label:20} flow {flow_s:7.1f} s {flow_share:6.1%}  wall {run.wall_s:6.1f} s "
            f"{run.wall_s / first.wall_s:6.1%}  jobs {run.jobs - jobs_before:4d}  "
            f"assembly {run.report.get('assembly')}"
        )
        print(f"{'':20} stages {run.report['stages']}")
        jobs_before = run.jobs
    for (label, _), check in zip(RETAKES, checks, strict=True):
        print(f"retake {label:12} {check}")


if __name__ == "__main__":
    main()
