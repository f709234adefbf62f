"""Each scene in its own language, and what each scene costs: a mixed storyboard transcribed by
`storyboard transcribe`, whole process timed, with each engine.

    .venv/bin/python -m benchmarks.languages [--real DIR] [--engines ENGINE ...] [--keep DIR]

The storyboard is English (its first scenes), with scenes spoken by espeak-ng in French,
Spanish, German, Italian and Portuguese at three lengths (1-2 s, 3-5 s, 8-15 s), a silent one,
and, with --real, the real recordings of that folder (`../shared/eval/real-speech`: `jfk.flac`,
`hotwords.mp3` in English; `multilingual.mp3` cut into its English and German halves). Each
engine runs in a fresh process on a fresh transcript cache (the model files are shared).
Prints a table of every scene (the language it was read in, against the one spoken; seconds;
seconds per second of audio), the share read in their own language by length, the slowest
scene against the median, and the whole-process ratio of openai-whisper to faster-whisper.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from configs.settings import default_cache_dir

ENGINES = ("faster-whisper", "openai-whisper")
LENGTHS = ("short", "medium", "long")
SPEED = {"short": 150, "medium": 105, "long": 140}
SENTENCES = {
    "en": (
        "A red fox.",
        "A lion walks through a misty jungle at dawn.",
        "The old lighthouse keeper climbs the stairs every evening, lights the lamp, "
        "and watches the ships pass by in the storm.",
    ),
    "fr": (
        "Un chat noir.",
        "Un lion marche dans la jungle brumeuse à l'aube.",
        "Le vieux gardien du phare monte l'escalier chaque soir, allume la lampe et "
        "regarde passer les navires dans la tempête.",
    ),
    "es": (
        "Un perro rojo.",
        "Un león camina por la selva brumosa al amanecer.",
        "El viejo guardián del faro sube la escalera cada tarde, enciende la lámpara y "
        "mira pasar los barcos en la tormenta.",
    ),
    "de": (
        "Ein roter Fuchs.",
        "Ein Löwe geht im Morgengrauen durch einen nebligen Dschungel.",
        "Der alte Leuchtturmwärter steigt jeden Abend die Treppe hinauf, zündet die Lampe "
        "an und sieht die Schiffe im Sturm vorbeiziehen.",
    ),
    "it": (
        "Un gatto nero.",
        "Un leone cammina nella giungla nebbiosa all'alba.",
        "Il vecchio guardiano del faro sale le scale ogni sera, accende la lampada e guarda "
        "passare le navi nella tempesta.",
    ),
    "pt": (
        "Um gato preto.",
        "Um leão caminha pela selva enevoada ao amanhecer.",
        "O velho faroleiro sobe as escadas todas as noites, acende a lâmpada e observa os "
        "navios passarem na tempestade.",
    ),
}


def speak(folder: Path, name: str, language: str, length: str) -> None:
    short, medium, long = SENTENCES[language]
    text = {"short": short, "medium": medium, "long": f"{long} {medium}"}[length]
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            "espeak-ng",
            "-v",
            language,
            "-s",
            str(SPEED[length]),
            "-w",
            str(folder / f"{name}.wav"),
            text,
        ],
        check=True,
    )


def ffmpeg(*arguments: str) -> None:
    import imageio_ffmpeg

    executable = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([executable, "-loglevel", "error", "-y", *arguments], check=True)  # noqa: S603


def build_storyboard(folder: Path, real: Path | None) -> dict[str, str]:
    """The recordings, English first; the language each scene is spoken in, by scene id."""
    spoken: dict[str, str] = {}
    order = 0
    for language in SENTENCES:
        for length in LENGTHS:
            order += 1
            name = f"{order:02d}_{language}_{length}"
            speak(folder, name, language, length)
            spoken[name] = language
    order += 1
    silent = f"{order:02d}_silence"
    ffmpeg(
        "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", str(folder / f"{silent}.wav")
    )
    spoken[silent] = ""
    if real is not None:
        for name, language, cut in (
            ("jfk.flac", "en", ()),
            ("hotwords.mp3", "en", ()),
            ("multilingual.mp3", "en", ("-t", "30")),
            ("multilingual.mp3", "de", ("-ss", "30")),
        ):
            order += 1
            scene = f"{order:02d}_{language}_real_{Path(name).stem}"
            ffmpeg("-i", str(real / name), *cut, "-ar", "16000", str(folder / f"{scene}.wav"))
            spoken[scene] = language
    return spoken


def transcribe(engine: str, folder: Path, models: Path) -> tuple[float, list[dict[str, Any]]]:
    """`storyboard transcribe` in a fresh process on a fresh cache: seconds, and its scenes."""
    with tempfile.TemporaryDirectory() as cache:
        (Path(cache) / "models").symlink_to(models)
        env = {**os.environ, "STORYBOARD_CACHE_DIR": cache}
        started = time.perf_counter()
        completed = subprocess.run(  # noqa: S603 - fixed arguments
            [
                shutil.which("storyboard") or "storyboard",
                "transcribe",
                str(folder),
                "--engine",
                engine,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
    scenes = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    return seconds, scenes


def print_scenes(
    engine: str, seconds: float, scenes: list[dict[str, Any]], spoken: dict[str, str]
) -> None:
    print(f"\n{engine}: {seconds:.1f} s, whole process")
    print(f"{'scene':28} {'spoken':>6} {'read':>5} {'p':>5} {'s':>6} {'s/s':>5}  transcript")
    rates = []
    for scene in scenes:
        audio_s = float(scene.get("audio_duration_s") or 0.0)
        cost = float(scene.get("seconds") or 0.0)
        rate = cost / audio_s if audio_s else 0.0
        rates.append((scene["scene_id"], cost, audio_s, rate))
        probability = scene.get("language_probability")
        shown = "-" if probability is None else f"{probability:.2f}"
        text = (
            scene.get("transcript")
            or scene.get("error")
            or ("(no speech)" if scene.get("no_speech") else "")
        )
        print(
            f"{scene['scene_id']:28} {spoken.get(scene['scene_id'], '?') or '-':>6} "
            f"{scene.get('language') or '-':>5} {shown:>5} {cost:6.2f} {rate:5.2f}  {text[:60]}"
        )
    print_shares(scenes, spoken)
    median = statistics.median(rate for *_, rate in rates if rate)
    over = [
        f"{scene_id} {cost:.2f} s"
        for scene_id, cost, audio_s, _ in rates
        if cost > max(3 * median * audio_s, 2.0)
    ]
    print(
        f"  median {median:.2f} s per s of audio; over 3x the median or 2 s: "
        f"{', '.join(over) or 'none'}"
    )


def print_shares(scenes: list[dict[str, Any]], spoken: dict[str, str]) -> None:
    for length in (*LENGTHS, "real"):
        chosen = [s for s in scenes if f"_{length}" in s["scene_id"] and spoken.get(s["scene_id"])]
        right = [s for s in chosen if s.get("language") == spoken[s["scene_id"]]]
        if chosen:
            print(f"  {length:7} {len(right)}/{len(chosen)} in their own language")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real", type=Path, help="a folder with jfk.flac, hotwords.mp3, multilingual.mp3"
    )
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--keep", type=Path, help="build the storyboard here and keep it")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = arguments.keep or Path(temporary) / "mixed"
        folder.mkdir(parents=True, exist_ok=True)
        spoken = build_storyboard(folder, arguments.real)
        models = default_cache_dir() / "models"
        models.mkdir(parents=True, exist_ok=True)
        timings = {}
        for engine in arguments.engines:
            seconds, scenes = transcribe(engine, folder, models)
            timings[engine] = seconds
            print_scenes(engine, seconds, scenes, spoken)
    if len(timings) == 2:
        ratio = timings["openai-whisper"] / timings["faster-whisper"]
        print(f"\nfaster-whisper is {ratio:.1f}x faster than openai-whisper, whole process")


if __name__ == "__main__":
    main()
