"""Text-steered image-to-video on this machine: seconds per clip, peak memory, and seconds of
motion made per second of wall time, for Wan 2.2 TI2V-5B and LTX-Video 2B at their real
architectures (random weights from the configs in `benchmarks/video_configs/`, which cost what
trained ones cost), or tiny ones on a CPU.

    PYTHONPATH=. python benchmarks/video_families.py --tiny                      # CPU, anywhere
    PYTHONPATH=. python benchmarks/video_families.py --quick --json video.json   # one GPU spell
    PYTHONPATH=. python benchmarks/video_families.py --family wan --resolution 720 \\
        --steps 40 --cache first_block --compile regional --json video.json
    PYTHONPATH=. python benchmarks/video_families.py --report video.json

Each configuration makes the clips the local backend would make (`clients/generation/local/`:
the family's frames rule and fps, the levers of `video_speed.py`), times `--clips` of them after
one warm-up (which pays any compile, reported apart), and appends a row to `--json`, from which
`--report` prints the README's table. "Motion per second" counts 8 scenes of `--seconds` each,
image included: `--image-seconds` per picture (default: the SDXL figure the README measured on
an H100, 1.37 s; 0 with `--tiny`, whose clips come from a picture already made).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from clients.generation.local.video_families import LTX, WAN_22_TI2V, VideoFamily
from clients.generation.local.video_speed import apply_video_levers
from configs.settings import LocalGenerationSettings

CONFIGS = Path(__file__).resolve().parent / "video_configs"
FAMILIES = {"wan": (WAN_22_TI2V, "wan2.2-ti2v-5b.json"), "ltx": (LTX, "ltx-video-2b.json")}
RESOLUTIONS = {480: (832, 480), 720: (1280, 720), 64: (64, 32)}
SCENES = 8
QUICK = (
    {"family": "ltx", "resolution": 480, "steps": 40, "cache": "none"},
    {"family": "ltx", "resolution": 480, "steps": 8, "cache": "none"},
    {"family": "wan", "resolution": 480, "steps": 8, "cache": "none"},
    {"family": "wan", "resolution": 480, "steps": 8, "cache": "first_block"},
)
"""A matrix that fits one 10-minute GPU spell: LTX at its own and a distilled step count,
Wan 2.2 at a distilled one, with and without the first-block cache."""


@dataclass(frozen=True)
class Setup:
    family: str
    resolution: int
    seconds: float
    steps: int
    cache: str
    compile: str
    tiny: bool


@dataclass(frozen=True)
class Row:
    setup: Setup
    device: str
    size: str
    frames: int
    fps: int
    warm_up_s: float
    s_per_clip: float
    peak_gib: float
    motion_per_s: float


def real_pipeline(family: str, device: str) -> Any:
    """The family's pipeline at its real architecture, with random weights, in bfloat16."""
    import diffusers
    import transformers

    from testkit.fakes.tiny_video_pipelines import t5_tokenizer

    config = json.loads((CONFIGS / FAMILIES[family][1]).read_text())
    text = dict(config["text_encoder"])
    encoder_class = getattr(transformers, text.pop("class"))
    config_class = transformers.UMT5Config if family == "wan" else transformers.T5Config
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            text_encoder = encoder_class(config_class(**text))
            if family == "wan":
                transformer = diffusers.WanTransformer3DModel(**config["transformer"])
                vae = diffusers.AutoencoderKLWan(**config["vae"])
            else:
                transformer = diffusers.LTXVideoTransformer3DModel(**config["transformer"])
                vae = diffusers.AutoencoderKLLTXVideo(**config["vae"])
    finally:
        torch.set_default_dtype(torch.float32)
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(**config["scheduler"])
    parts = dict(transformer=transformer, vae=vae, text_encoder=text_encoder)
    parts |= dict(tokenizer=t5_tokenizer(512), scheduler=scheduler)
    if family == "wan":
        return diffusers.WanImageToVideoPipeline(**parts, **config["pipeline"])
    return diffusers.LTXImageToVideoPipeline(**parts)


def tiny_pipeline(family: str) -> Any:
    from testkit.fakes.tiny_video_pipelines import ltx_pipeline, wan_pipeline

    return wan_pipeline(image_encoder=False) if family == "wan" else ltx_pipeline()


def peak_gib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(setup: Setup, clips: int, image_seconds: float) -> Row:
    family: VideoFamily = FAMILIES[setup.family][0]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipeline = tiny_pipeline(setup.family) if setup.tiny else real_pipeline(setup.family, device)
    pipeline.to(device=device, dtype=torch.float32 if device == "cpu" else torch.bfloat16)
    pipeline.set_progress_bar_config(disable=True)
    compile_mode = "regional" if setup.compile == "regional" else False
    levers = LocalGenerationSettings(cache=setup.cache, compile=compile_mode)  # type: ignore[arg-type]
    apply_video_levers(pipeline, levers, device)
    width, height = family.accepted_size(*RESOLUTIONS[64 if setup.tiny else setup.resolution])
    frames = family.frames_for(setup.seconds, family.fps)
    options: dict[str, Any] = dict(prompt="A lion walks through a misty jungle at dawn")
    options |= dict(negative_prompt="blurry", width=width, height=height, num_frames=frames)
    options |= dict(num_inference_steps=setup.steps, guidance_scale=family.guidance)
    options |= dict(
        output_type="np", **({"frame_rate": family.fps} if family.frame_rate_option else {})
    )
    picture = Image.new("RGB", (width, height), (170, 120, 60))

    def one(seed: int) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.inference_mode():
            pipeline(image=picture, generator=torch.Generator().manual_seed(seed), **options)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    warm_up = one(0)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    per_clip = sum(one(seed) for seed in range(1, clips + 1)) / clips
    motion = SCENES * setup.seconds / (SCENES * (per_clip + image_seconds))
    return Row(
        setup=setup,
        device=torch.cuda.get_device_name() if device == "cuda" else "CPU",
        size=f"{width}x{height}",
        frames=frames,
        fps=family.fps,
        warm_up_s=round(warm_up, 2),
        s_per_clip=round(per_clip, 2),
        peak_gib=round(peak_gib(device), 2),
        motion_per_s=round(motion, 3),
    )


def report(paths: list[Path]) -> None:
    rows = [row for path in paths for row in json.loads(path.read_text())]
    print("| device | family | size | frames @ fps | steps | cache | compile | s/clip |", end="")
    print(" warm-up s | peak GiB | s of motion per s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        setup = row["setup"]
        name = FAMILIES[setup["family"]][0].name + (" (tiny)" if setup["tiny"] else "")
        print(
            f"| {row['device']} | {name} | {row['size']} | {row['frames']} @ {row['fps']} "
            f"| {setup['steps']} | {setup['cache']} | {setup['compile']} | {row['s_per_clip']} "
            f"| {row['warm_up_s']} | {row['peak_gib']} | {row['motion_per_s']} |"
        )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="wan")
    parser.add_argument("--resolution", type=int, choices=(480, 720), default=480)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--cache", choices=("none", "first_block", "taylorseer"), default="none")
    parser.add_argument("--compile", choices=("none", "regional"), default="none")
    parser.add_argument("--clips", type=int, default=1, help="clips timed after the warm-up")
    parser.add_argument("--image-seconds", type=float, default=None)
    parser.add_argument("--tiny", action="store_true", help="tiny configs, for a CPU")
    parser.add_argument("--quick", action="store_true", help="the QUICK matrix")
    parser.add_argument("--json", type=Path, help="append the rows to this file")
    parser.add_argument("--report", type=Path, nargs="+", help="print the table of these files")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.report:
        report(args.report)
        return
    base = dict(seconds=args.seconds, compile=args.compile, tiny=args.tiny)
    if args.quick:
        setups = [Setup(**base, **choice) for choice in QUICK]  # type: ignore[arg-type]
    elif args.tiny:
        choices = [dict(family=f, cache=c) for f in FAMILIES for c in ("none", "first_block")]
        setups = [Setup(**base, resolution=64, steps=4, **c) for c in choices]  # type: ignore[arg-type]
    else:
        choice = dict(family=args.family, resolution=args.resolution, steps=args.steps)
        setups = [Setup(**base, cache=args.cache, **choice)]  # type: ignore[arg-type]
    image_s = args.image_seconds if args.image_seconds is not None else (0 if args.tiny else 1.37)
    rows = []
    for setup in setups:
        row = measure(setup, args.clips, image_s)
        print(json.dumps(asdict(row)), flush=True)
        rows.append(asdict(row))
    if args.json:
        earlier = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(earlier + rows, indent=1))
        report([args.json])


if __name__ == "__main__":
    main()
