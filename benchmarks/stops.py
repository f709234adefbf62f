"""How soon a run stops: SIGINT and SIGTERM sent to `storyboard run` in the middle of each
stage, and the seconds from the signal to the command's exit.

    .venv/bin/python -m benchmarks.stops [--local]

Stages: transcription (twelve 30-s recordings, draft backend), hosted generation (the demo
against the loopback fake NVIDIA API, each request 2 s and each SVD job 6 s) and, with
`--local`, local generation (the tiny diffusers pipeline of the tests, 200 steps at
1024x1024, about two minutes a picture on a 2-core CPU). The signal is sent once the stage is
seen running: the storyboard language logged (transcription), the fake API's first paid
request (hosted), or the transcript cached and six seconds more (local). Prints the stage,
the signal, the exit status and the seconds to stop (the README's promise: within a few
seconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from testkit.fakes.nvidia_server import FakeNvidia, Faults

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "storyboards" / "demo"
STORYBOARD = str(Path(sys.executable).parent / "storyboard")
SVD = "stabilityai/stable-video-diffusion"


class Run:
    """`storyboard ARGS` in the background, its stderr read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
            [STORYBOARD, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop_when(self, ready: Callable[[], bool], signum: int) -> tuple[int | None, float]:
        """Send `signum` once `ready()`; the exit status and the seconds it took to stop."""
        deadline = time.monotonic() + 600
        while not ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                return self.process.returncode, float("nan")
            time.sleep(0.1)
        self.process.send_signal(signum)
        sent = time.monotonic()
        self.process.wait(timeout=300)
        return self.process.returncode, time.monotonic() - sent


def environment(folder: Path) -> dict[str, str]:
    env = {**os.environ, "STORYBOARD_CACHE_DIR": str(folder / "cache")}
    env["PREFECT_HOME"] = str(folder / "prefect")
    env.pop("PREFECT_API_URL", None)
    for name in ("NVIDIA_API_KEY", "NVIDIA_API_BASE", "NVCF_API_BASE"):
        env.pop(name, None)
    return env


def transcription(folder: Path, signum: int) -> tuple[int | None, float]:
    source = folder / "long"
    source.mkdir()
    long = sorted(DEMO.glob("*.ogg"))[0]
    for index in range(12):
        shutil.copy(long, source / f"scene_{index:02d}{long.suffix}")
    args = ["run", str(source), "--out", str(folder / "out"), "--backend", "draft"]
    run = Run(args, environment(folder))
    return run.stop_when(lambda: run.said("storyboard language"), signum)


def hosted_generation(folder: Path, signum: int) -> tuple[int | None, float]:
    faults = Faults(latency_s=2.0, job_seconds={SVD: 6.0})
    with FakeNvidia(faults) as fake:
        env = environment(folder) | {
            "NVIDIA_API_KEY": fake.valid_key,
            "NVIDIA_API_BASE": fake.api_base,
            "NVCF_API_BASE": fake.nvcf_base,
        }
        run = Run(["run", str(DEMO), "--out", str(folder / "out"), "--backend", "nvidia"], env)
        return run.stop_when(lambda: fake.stats.generation_requests > 0, signum)


def local_generation(folder: Path, signum: int) -> tuple[int | None, float]:
    from testkit.fakes.tiny_pipelines import build_models
    from testkit.sources import make_source

    models = build_models(folder / "models")
    spec = {"title": "Slow", "seed": 7, "scenes": [{"id": "dawn", "prompt": "a lion at dawn"}]}
    source = make_source(folder / "story", {"dawn": "dawn.ogg"}, spec)
    local = {"image_model": str(models.sd), "video_model": None, "device": "cpu", "steps": 200}
    config = {
        "generation": {"local": local},
        "assembly": {"width": 1024, "height": 1024, "fps": 12, "render_workers": 1},
    }
    (folder / "slow.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    args = ["run", str(source), "--out", str(folder / "out"), "--backend", "local"]
    run = Run([*args, "--config", str(folder / "slow.yaml")], environment(folder))
    transcripts = folder / "cache" / "transcripts"
    seen: list[float] = []

    def denoising() -> bool:
        if transcripts.exists() and not seen:
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] > 6.0

    return run.stop_when(denoising, signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="local generation too (slow)")
    arguments = parser.parse_args()
    stages = [("transcription", transcription), ("hosted generation", hosted_generation)]
    if arguments.local:
        stages.append(("local generation", local_generation))
    print(f"{'stage':20} {'signal':8} {'exit':>4} {'seconds to stop':>16}")
    for name, stage in stages:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with tempfile.TemporaryDirectory() as temporary:
                status, seconds = stage(Path(temporary), signum)
            shown = signal.Signals(signum).name
            print(f"{name:20} {shown:8} {status!s:>4} {seconds:16.1f}", flush=True)


if __name__ == "__main__":
    main()
