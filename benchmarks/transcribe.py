"""Transcription speed of each engine and mode on the same clips, whole process timed.

    .venv/bin/python -m benchmarks.transcribe [SOURCE ...]   (default: storyboards/demo)

Each configuration runs in a fresh Python process (imports, model load and transcription all
counted), on the CPU unless --device says otherwise. Prints model load time, mean per-scene
latency, the real-time factor (audio seconds per second of work) and the speed against
openai-whisper.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CONFIGURATIONS = (
    ("faster-whisper", "packed"),
    ("faster-whisper", "one-by-one"),
    ("openai-whisper", "packed"),
    ("openai-whisper", "one-by-one"),
)


def worker(engine: str, mode: str, device: str, sources: list[str]) -> None:
    from clients.whisper import load_engine
    from configs.settings import TranscriptionSettings, default_cache_dir
    from tasks.ingest import plan_storyboard
    from tasks.scene import Transcript
    from tasks.transcribe import transcribe_recordings

    settings = TranscriptionSettings(
        engine=engine,
        device=device,
        pack_short_scenes=mode == "packed",  # type: ignore[arg-type]
    )
    recordings = [r for source in sources for r in plan_storyboard(source).recordings]
    started = time.perf_counter()
    whisper = load_engine(settings, default_cache_dir() / "models")
    loaded = time.perf_counter()
    results = transcribe_recordings(whisper, recordings, settings)
    done = time.perf_counter()
    transcripts = [r for r in results if isinstance(r, Transcript)]
    print(
        json.dumps(
            {
                "load_s": loaded - started,
                "transcribe_s": done - loaded,
                "scenes": len(recordings),
                "audio_s": sum(t.audio_duration_s for t in transcripts),
                "device": whisper.device,
                "compute_type": whisper.compute_type,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=["storyboards/demo"])
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "MODE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(*arguments.worker, arguments.device, arguments.sources)
        return

    rows = []
    for engine, mode in CONFIGURATIONS:
        started = time.perf_counter()
        completed = subprocess.run(  # noqa: S603 - this same script, fixed arguments
            [sys.executable, "-m", "benchmarks.transcribe", "--worker", engine, mode,
             "--device", arguments.device, *arguments.sources],
            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        process_s = time.perf_counter() - started
        figures = json.loads(completed.stdout.strip().splitlines()[-1])
        rows.append((engine, mode, process_s, figures))

    baseline = {m: p for e, m, p, _ in rows if e == "openai-whisper"}
    audio = rows[0][3]["audio_s"]
    print(f"{rows[0][3]['scenes']} scenes, {audio:.1f} s of audio, device {arguments.device}")
    print(f"{'engine':15} {'mode':11} {'process':>8} {'load':>6} {'per scene':>9} "
          f"{'x real time':>11} {'x openai, same mode':>19}")  # fmt: skip
    for engine, mode, process_s, figures in rows:
        per_scene = figures["transcribe_s"] / max(1, figures["scenes"])
        print(
            f"{engine:15} {mode:11} {process_s:7.1f}s {figures['load_s']:5.1f}s "
            f"{per_scene:8.2f}s {audio / figures['transcribe_s']:10.1f}x "
            f"{baseline[mode] / process_s:18.1f}x"
        )


if __name__ == "__main__":
    main()
