"""Transcription speed and accuracy of each engine and mode on the same clips, whole process
timed.

    .venv/bin/python -m benchmarks.transcribe [SOURCE ...] [--engines ENGINE ...]
    (default: storyboards/demo, both engines)

Each configuration runs in a fresh Python process (imports, model load and transcription all
counted), on the CPU unless --device says otherwise. Prints model load time, mean per-scene
latency, the real-time factor (audio seconds per second of work), the speed against
openai-whisper, the word error rate against the words known to be spoken (`<recording
stem>.txt` beside a recording holds them; scenes without one are not counted), and how many
scenes have the same words as the same engine's one-by-one transcript.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.wer import word_error_rate, words

ENGINES = ("faster-whisper", "openai-whisper")
MODES = ("packed", "one-by-one")


@dataclass(frozen=True)
class Run:
    engine: str
    mode: str
    process_s: float
    figures: dict[str, Any]
    transcripts: dict[str, str | None]
    """Each scene's transcript by its recording's path; None for a scene that failed."""


def worker(engine: str, mode: str, device: str, sources: list[str]) -> None:
    from clients.services import load_engine
    from configs.settings import TranscriptionSettings, default_cache_dir
    from domain.scene import Transcript
    from tasks.ingest import plan_storyboard
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
                "transcripts": {
                    str(recording.path): result.text if isinstance(result, Transcript) else None
                    for recording, result in zip(recordings, results, strict=True)
                },
            }
        )
    )


def run_configuration(engine: str, mode: str, device: str, sources: list[str]) -> Run:
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - this same script, fixed arguments
        [
            sys.executable,
            "-m",
            "benchmarks.transcribe",
            "--worker",
            engine,
            mode,
            "--device",
            device,
            *sources,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    process_s = time.perf_counter() - started
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    return Run(engine, mode, process_s, figures, figures.pop("transcripts"))


def known_words(scenes: list[str]) -> dict[str, str]:
    """The reference words of every scene that has them: `<recording stem>.txt` beside it."""
    references = {}
    for scene in scenes:
        reference = Path(scene).with_suffix(".txt")
        if reference.is_file():
            references[scene] = reference.read_text(encoding="utf-8")
    return references


def corpus_word_error_rate(run: Run, references: dict[str, str]) -> float | None:
    """Word errors over all referenced scenes, divided by their reference words; a failed
    scene counts as nothing heard."""
    errors = reference_words = 0.0
    for scene, reference in references.items():
        count = len(words(reference))
        errors += word_error_rate(reference, run.transcripts.get(scene) or "") * count
        reference_words += count
    return errors / reference_words if reference_words else None


def scenes_as_one_by_one(run: Run, one_by_one: Run) -> int:
    return sum(
        words(text or "") == words(one_by_one.transcripts.get(scene) or "")
        for scene, text in run.transcripts.items()
    )


def print_table(runs: list[Run], device: str) -> None:
    first = runs[0].figures
    references = known_words(list(runs[0].transcripts))
    print(
        f"{first['scenes']} scenes, {first['audio_s']:.1f} s of audio, device {device}, "
        f"reference words for {len(references)} scenes"
    )
    print(
        f"{'engine':15} {'mode':11} {'process':>8} {'load':>6} {'per scene':>9} "
        f"{'x real time':>11} {'x openai, same mode':>19} {'WER':>6} {'= one-by-one':>12}"
    )
    openai_process_s = {run.mode: run.process_s for run in runs if run.engine == ENGINES[1]}
    one_by_one = {run.engine: run for run in runs if run.mode == "one-by-one"}
    for run in runs:
        figures = run.figures
        per_scene = figures["transcribe_s"] / max(1, figures["scenes"])
        against_openai = (
            f"{openai_process_s[run.mode] / run.process_s:18.1f}x"
            if run.mode in openai_process_s
            else f"{'-':>19}"
        )
        error_rate = corpus_word_error_rate(run, references)
        same = scenes_as_one_by_one(run, one_by_one[run.engine])
        print(
            f"{run.engine:15} {run.mode:11} {run.process_s:7.1f}s {figures['load_s']:5.1f}s "
            f"{per_scene:8.2f}s {figures['audio_s'] / figures['transcribe_s']:10.1f}x "
            f"{against_openai} "
            f"{'-' if error_rate is None else f'{error_rate:.1%}':>6} "
            f"{f'{same}/{len(run.transcripts)}':>12}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=["storyboards/demo"])
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="default: both"
    )
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "MODE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(*arguments.worker, arguments.device, arguments.sources)
        return
    runs = [
        run_configuration(engine, mode, arguments.device, arguments.sources)
        for engine in ENGINES
        if engine in arguments.engines
        for mode in MODES
    ]
    print_table(runs, arguments.device)


if __name__ == "__main__":
    main()
