"""Local generation on a GPU: SDXL base images and SVD-XT clips, seed-style against ours.

    PYTHONPATH=. python benchmarks/local_generation.py --mode seed --json seed.json
    PYTHONPATH=. python benchmarks/local_generation.py --mode ours --json ours.json
    PYTHONPATH=. python benchmarks/local_generation.py --mode ours --compile default --json c.json
    PYTHONPATH=. python benchmarks/local_generation.py --mode ours --clips-only --json clips.json
    PYTHONPATH=. python benchmarks/local_generation.py --report seed.json ours.json c.json
    PYTHONPATH=. python benchmarks/local_generation.py --tiny    # CPU, tiny configs, anywhere

The real architectures (SDXL base 1.0: UNet, VAE, CLIP ViT-L and OpenCLIP bigG text encoders;
SVD-XT: spatio-temporal UNet, temporal-decoder VAE, CLIP ViT-H image encoder) are built from the
configs in `benchmarks/local_configs/` with random weights, which cost exactly what trained ones
cost. The tokenizers are small BPEs in the standard files; the text encoders keep the real
vocabulary (49408) and length (77). `--build DIR` saves the random pipelines once, then loads.

One configuration per process. `seed` is how the projects this one descends from ran: a float16
pipeline loaded once, one scene per call, diffusers' defaults (`--measure` scenes are timed and
scaled to `--scenes`). `ours` applies `clients.generation.local.speed.OURS`: bfloat16, SDPA
with fused projections, channels_last, VAE slicing, prompts batched through the denoiser and,
with `--compile`, a compiled UNet (the warm-up that pays the compile is reported apart). Imports
torch, transformers, diffusers and the recipe module (which imports only torch and diffusers).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from benchmarks.local_architectures import libraries, load_pipelines, parameter_counts
from clients.generation.local.speed import (
    COMPILE_MODES,
    OURS,
    SEED_STYLE,
    SpeedRecipe,
    apply_recipe,
    attention_context,
    clip_call_options,
)

PROMPTS = (
    "A lion walks through a misty jungle at dawn",
    "Two elephants drink from a river at sunset",
    "A hawk circles above the dry savanna",
    "Rain falls on a village market, lanterns glowing",
    "A small boat crosses a calm lake under the stars",
    "Children fly kites on a windy hill",
    "A fox watches the snow from its den",
    "The city wakes, trams rolling past old stone houses",
)
STYLE = ", storyboard frame, cinematic lighting"


@dataclass(frozen=True)
class Workload:
    """What one scene asks for: an image, then a clip animated from it."""

    scenes: int
    measure: int
    image_size: int
    image_steps: int
    clip_width: int
    clip_height: int
    frames: int
    clip_steps: int
    clips: bool = True


def make_images(
    pipe: Any, recipe: SpeedRecipe, seeds: list[int], work: Workload, steps: int, device: str
) -> list[Image.Image]:
    """One SDXL call per `images_per_call` scenes; one generator (seed) per scene."""
    if pipe is None:  # --clips-only: one plain stand-in image per scene, no SDXL
        return [Image.new("RGB", (work.image_size,) * 2, (96, 128, 160)) for _ in seeds]
    images: list[Image.Image] = []
    for start in range(0, len(seeds), recipe.images_per_call):
        batch = seeds[start : start + recipe.images_per_call]
        prompts = [PROMPTS[s % len(PROMPTS)] + STYLE for s in batch]
        generators = [torch.Generator(device).manual_seed(s) for s in batch]
        with attention_context(recipe):
            out = pipe(
                prompt=prompts,
                height=work.image_size,
                width=work.image_size,
                num_inference_steps=steps,
                generator=generators,
            )
        images.extend(out.images)
    return images


def make_clips(
    pipe: Any,
    recipe: SpeedRecipe,
    images: list[Image.Image],
    seeds: list[int],
    work: Workload,
    steps: int,
    device: str,
) -> int:
    """One SVD-XT call per `clips_per_call` images; returns the frames made (none: no clips)."""
    frames = 0
    size = (work.clip_width, work.clip_height)
    for start in range(0, len(images) if work.clips else 0, recipe.clips_per_call):
        batch = [image.resize(size) for image in images[start : start + recipe.clips_per_call]]
        generators = [torch.Generator(device).manual_seed(s) for s in seeds[start:][: len(batch)]]
        with attention_context(recipe):
            out = pipe(
                batch,
                height=work.clip_height,
                width=work.clip_width,
                num_frames=work.frames,
                num_inference_steps=steps,
                generator=generators,
                **clip_call_options(recipe, work.frames),
            )
        frames += sum(len(clip) for clip in out.frames)
    return frames


def _timed(device: str, call: Any) -> tuple[float, Any]:
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    sync()
    started = time.perf_counter()
    result = call()
    sync()
    return time.perf_counter() - started, result


def _peak_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0


def _warm_up(sdxl: Any, svd: Any, recipe: SpeedRecipe, work: Workload, device: str) -> None:
    """Same shapes as the timed calls, 2 steps each: pays compile, autotune and first loads."""
    seeds = list(range(1000, 1000 + max(recipe.images_per_call, recipe.clips_per_call)))
    images = make_images(sdxl, recipe, seeds[: recipe.images_per_call], work, 2, device)
    images = (images * recipe.clips_per_call)[: recipe.clips_per_call]
    make_clips(svd, recipe, images, seeds, work, 2, device)


def run(sdxl: Any, svd: Any, recipe: SpeedRecipe, work: Workload, device: str) -> dict[str, Any]:
    """Warm up, then time `work.measure` scenes: all images first, then all clips."""
    warm_s, _ = _timed(device, lambda: _warm_up(sdxl, svd, recipe, work, device))
    print(f"warm-up (compile included): {warm_s:.1f} s", flush=True)
    seeds = list(range(1, work.measure + 1))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    image_s, images = _timed(
        device, lambda: make_images(sdxl, recipe, seeds, work, work.image_steps, device)
    )
    image_peak = _peak_gib(device)
    print(f"{work.measure} images: {image_s:.2f} s", flush=True)
    clip_s, frames = _timed(
        device, lambda: make_clips(svd, recipe, images, seeds, work, work.clip_steps, device)
    )
    per_image, per_clip = image_s / work.measure, clip_s / work.measure
    return {
        "warmup_s": warm_s,
        "s_per_image": per_image,
        "s_per_clip": per_clip,
        "peak_gib": _peak_gib(device),
        "peak_image_gib": image_peak,
        "frames_per_clip": frames / work.measure,
        "scenes": work.scenes,
        "measured_scenes": work.measure,
        "scene_seconds": (per_image + per_clip) * work.scenes,
        "scaled": work.measure != work.scenes,
    }


def recipe_for(args: argparse.Namespace) -> SpeedRecipe:
    """The mode's recipe, with the command line's overrides."""
    if args.mode == "seed":
        return SEED_STYLE if not args.tiny else replace(SEED_STYLE, dtype=torch.float32)
    recipe = replace(
        OURS,
        dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype],
        compile_mode=args.compile,
        compile_vae=args.compile_vae,
        attention_backend=args.attention,
        images_per_call=args.images_per_call,
        clips_per_call=args.clips_per_call,
        decode_chunk_size=args.decode_chunk_size,
        fuse_qkv=not args.no_fuse,
        channels_last=not args.no_channels_last,
        fullgraph=not args.no_fullgraph,
    )
    return replace(recipe, dtype=torch.float32) if args.tiny else recipe


def workload_for(args: argparse.Namespace) -> Workload:
    """The real sizes (1024x1024 x30 steps; 25 frames of 1024x576 x25 steps) or tiny ones."""
    tiny: bool = args.tiny
    measure = args.measure or (2 if args.mode == "seed" else args.scenes)
    return Workload(
        scenes=args.scenes,
        measure=min(measure, args.scenes),
        image_size=args.image_size or (64 if tiny else 1024),
        image_steps=args.steps or (3 if tiny else 30),
        clip_width=64 if tiny else 1024,
        clip_height=32 if tiny else 576,
        frames=args.frames or (4 if tiny else 25),
        clip_steps=args.clip_steps or (3 if tiny else 25),
        clips=not args.images_only,
    )


def print_table(results: list[dict[str, Any]]) -> None:
    """Configuration, s/image, s/clip, peak GiB, N-scene seconds and the ratio to seed-style."""
    base = next((r for r in results if r["mode"] == "seed"), None)
    devices = sorted({r["device_name"] for r in results})
    print("device: " + ", ".join(devices))
    head = f"{'configuration':<80} {'s/image':>8} {'s/clip':>8} {'peak GiB':>9}"
    print(head + f" {'scenes s':>9} {'warm-up s':>9} {'ratio':>6}")
    for r in results:
        key = "s_per_image" if r["frames_per_clip"] == 0 else "scene_seconds"  # --images-only
        ratio = base[key] / r[key] if base else float("nan")
        label = f"{r['recipe']['name']}: {r['recipe_text']}"[:80]
        scenes = f"{r['scene_seconds']:.1f}{'*' if r['scaled'] else ''}"
        print(
            f"{label:<80} {r['s_per_image']:>8.2f} {r['s_per_clip']:>8.2f} {r['peak_gib']:>9.1f}"
            f" {scenes:>9} {r['warmup_s']:>9.1f} {ratio:>6.2f}"
        )
    print(
        f"scenes s: {results[0]['scenes']} scenes (image + clip), * timed fewer and scaled;"
        " ratio: seed-style's time over this one's (s/image's for --images-only)"
    )


def parse_args() -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--mode", choices=("seed", "ours"), default="ours", help="recipe (default: ours)")
    add("--scenes", type=int, default=8, help="scenes the throughput is for (default 8)")
    add("--measure", type=int, help="scenes actually timed (default: seed 2, ours all)")
    add("--compile", choices=COMPILE_MODES, default="none", help="torch.compile the UNets")
    add("--compile-vae", action="store_true", help="also compile the VAE decoders")
    add("--no-fullgraph", action="store_true", help="compile allowing graph breaks")
    add("--dtype", choices=("bf16", "fp16"), default="bf16", help="ours: half type")
    add("--attention", choices=("auto", "flash", "cudnn", "efficient"), default="auto")
    add("--images-per-call", type=int, default=8, help="ours: prompts per SDXL call")
    add("--clips-per-call", type=int, default=2, help="ours: images per SVD call")
    add("--decode-chunk-size", type=int, help="ours: frames per VAE decode (default all)")
    add("--no-fuse", action="store_true", help="ours: leave q/k/v projections unfused")
    add("--no-channels-last", action="store_true", help="ours: keep the default layout")
    add("--steps", type=int, help="SDXL steps (default 30)")
    add("--clip-steps", type=int, help="SVD steps (default 25)")
    add("--frames", type=int, help="frames per clip (default 25)")
    add("--image-size", type=int, help="image side (default 1024)")
    add("--build", metavar="DIR", help="save random pipelines here once, load them after")
    add("--images-only", action="store_true", help="time the SDXL images alone (s/clip 0)")
    add("--clips-only", action="store_true", help="time the SVD clips alone (no SDXL built)")
    add("--tiny", action="store_true", help="tiny configs on the CPU: runs without a GPU")
    add("--json", metavar="FILE", help="write this run's result here")
    add("--report", nargs="+", metavar="FILE", help="print the table of saved results")
    return parser.parse_args()


def main() -> None:
    """Run one configuration (or print a report of saved ones)."""
    args = parse_args()
    if args.report:
        print_table([json.loads(Path(f).read_text()) for f in args.report])
        return
    warnings.filterwarnings("ignore")
    d, t = libraries()
    d.logging.set_verbosity_error()
    t.logging.set_verbosity_error()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    recipe, work = recipe_for(args), workload_for(args)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (--tiny)"
    built_s, (sdxl, svd) = _timed(device, lambda: load_pipelines(args, device))
    params = parameter_counts(sdxl, svd)
    for pipeline in (p for p in (sdxl, svd) if p is not None):
        apply_recipe(pipeline, recipe, device)
    result = run(sdxl, svd, recipe, work, device)
    result |= {"mode": args.mode, "device_name": name, "build_s": built_s, "params": params}
    result |= {"recipe": asdict(recipe) | {"dtype": str(recipe.dtype)}}
    result |= {"recipe_text": recipe.describe(), "workload": asdict(work)}
    print(json.dumps({k: v for k, v in result.items() if k != "recipe"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print_table([result])


if __name__ == "__main__":
    main()
