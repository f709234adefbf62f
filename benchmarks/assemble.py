"""Assembly speed and memory against a bare ffmpeg re-encode of the same video.

    .venv/bin/python -m benchmarks.assemble [--scenes 40 200]

For each count, a storyboard of that many scenes (draft clips, narrations of 1.5 to 9 s,
captions and labels on) is assembled in a fresh process, whose peak resident memory is
recorded (each scene's ffmpeg encoder is a short-lived process of its own). The finished
video is then re-encoded by ffmpeg alone with the same codec settings, which is the floor
any assembler has to pay for the encode itself.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(scenes: int, folder: Path) -> None:
    import math
    import wave

    import numpy as np

    from clients.generation.draft import DraftBackend
    from configs.settings import AssemblySettings
    from domain.media import ClipRequest, ImageRequest
    from domain.scene import Segment
    from tasks.assembly.render import assemble_storyboard
    from tasks.assembly.timeline import SceneCut

    backend = DraftBackend()
    clips = []
    for seed in range(1, 5):
        request = ImageRequest(f"benchmark scene {seed}", "", "sdxl", seed, 5, "DDIM", 25)
        image = backend.generate_image(request)
        clip = folder / f"clip{seed}.mp4"
        clip.write_bytes(backend.generate_clip(ClipRequest(image.data, seed, 1.8, 127)).data)
        clips.append(clip)
    cuts = []
    for index in range(scenes):
        seconds = 1.5 + (index * 37 % 75) / 10
        narration = folder / f"n{index}.wav"
        t = np.arange(round(seconds * 16_000)) / 16_000
        tone = 0.2 * np.sin(2 * math.pi * (200 + index % 7 * 50) * t)
        with wave.open(str(narration), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16_000)
            out.writeframes((tone * 32767).astype("<i2").tobytes())
        half = seconds / 2
        segments = (
            Segment(0.1, half, f"Scene {index}: the first half of what was said here"),
            Segment(half, seconds - 0.1, "and then the second half of the narration"),
        )
        cuts.append(
            SceneCut(f"s{index}", f"Scene {index + 1}", narration, segments, clips[index % 4])
        )
    settings = AssemblySettings()
    started = time.perf_counter()
    assemble_storyboard(cuts, settings, folder / "storyboard.mp4")
    assembled = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"assemble_s": assembled, "peak_self_mb": own / 1024}))


def bare_reencode(video: Path) -> float:
    from clients.media.ffmpeg import run_ffmpeg

    started = time.perf_counter()
    run_ffmpeg(
        [
            "-i",
            str(video),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            str(video.with_name("reencoded.mp4")),
        ]
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, nargs="+", default=[40, 200])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(int(arguments.worker[0]), Path(arguments.worker[1]))
        return
    from clients.media.ffmpeg import probe

    print(
        f"{'scenes':>6} {'video':>8} {'assemble':>9} {'bare ffmpeg':>11} {'ratio':>6} "
        f"{'peak memory':>11}"
    )
    for scenes in arguments.scenes:
        with tempfile.TemporaryDirectory(prefix="assemble-bench-") as name:
            folder = Path(name)
            completed = subprocess.run(  # noqa: S603 - this same script, fixed arguments
                [sys.executable, "-m", "benchmarks.assemble", "--worker", str(scenes), name],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            figures = json.loads(completed.stdout.strip().splitlines()[-1])
            video = folder / "storyboard.mp4"
            duration = probe(video).duration_s
            bare = bare_reencode(video)
        print(
            f"{scenes:6d} {duration:7.1f}s {figures['assemble_s']:8.1f}s {bare:10.1f}s "
            f"{figures['assemble_s'] / bare:5.2f}x {figures['peak_self_mb']:9.0f}MB"
        )


if __name__ == "__main__":
    main()
