"""Seconds per SDXL picture drawn from characters' reference pictures (IP-Adapter) against
without, through the local backend's own adapter code (`clients/generation/local/ip_adapter.py`).

    PYTHONPATH=. python -m benchmarks.references            # a GPU: the real architectures
    PYTHONPATH=. python -m benchmarks.references --tiny     # a CPU: tiny configs, anywhere

SDXL base 1.0 is built from `benchmarks/local_configs/` with random weights (which cost what
trained ones cost), and an IP-Adapter for its UNet in diffusers' layout with a CLIP ViT-H image
encoder (`ip-adapter_sdxl_vit-h`'s shapes), random too. Cases, each timed over `--pictures`
pictures after one warm-up: no references; one character with two references; two characters,
each masked to its half of the frame; and scenes alternating between a character and nobody,
which loads and unloads the adapter at every change (what a storyboard whose characters come
and go pays).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from benchmarks.local_architectures import build_sdxl
from clients.generation.local.ip_adapter import AdapterSlot, ReferenceAdapter
from domain.media import CharacterReference
from testkit.fakes.tiny_adapters import save_ip_adapter

VIT_H = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 16,
    "num_hidden_layers": 32,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 1024,
}
"""CLIP ViT-H/14, the image encoder of `ip-adapter_sdxl_vit-h`."""
PROMPT = "A lion walks through a misty jungle at dawn, storyboard frame"


def _references(folder: Path, count: int, size: int) -> list[str]:
    paths = []
    for index in range(count):
        path = folder / f"reference-{index}.png"
        noise = torch.randint(0, 255, (size, size, 3), dtype=torch.uint8)
        Image.fromarray(noise.numpy()).save(path)
        paths.append(str(path))
    return paths


def _picture_s(
    pipeline: Any, slot: AdapterSlot, cast: tuple[CharacterReference, ...], args: Any
) -> float:
    size = (args.size, args.size)
    started = time.perf_counter()
    options = slot.call_options(pipeline, cast, size)
    with torch.inference_mode():
        pipeline(
            prompt=PROMPT,
            num_inference_steps=args.steps,
            width=args.size,
            height=args.size,
            generator=torch.Generator("cpu").manual_seed(1),
            **options,
        )
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def measure(args: argparse.Namespace) -> dict[str, float]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    with torch.device(device):
        pipeline = build_sdxl(args.tiny).to(dtype=dtype)
    pipeline.set_progress_bar_config(disable=True)
    with tempfile.TemporaryDirectory(prefix="references-") as scratch:
        folder = Path(scratch)
        adapter = save_ip_adapter(pipeline, folder / "adapter", vision=None if args.tiny else VIT_H)
        slot = AdapterSlot(ReferenceAdapter(adapter))
        pictures = _references(folder, 3, 64 if args.tiny else 512)
        leo = CharacterReference("Leo", tuple(pictures[:2]))
        mia = CharacterReference("Mia", (pictures[2],))
        cases: dict[str, list[tuple[CharacterReference, ...]]] = {
            "no references": [()] * args.pictures,
            "one character, two references": [(leo,)] * args.pictures,
            "two characters, masked": [(leo, mia)] * args.pictures,
            "alternating character and nobody": [(leo,), ()] * max(1, args.pictures // 2),
        }
        seconds = {}
        for name, scenes in cases.items():
            _picture_s(pipeline, slot, scenes[0], args)  # warm-up
            seconds[name] = sum(_picture_s(pipeline, slot, cast, args) for cast in scenes)
            seconds[name] /= len(scenes)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs (a CPU)")
    parser.add_argument("--pictures", type=int, default=4, help="timed pictures per case")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    if args.tiny:
        args.steps, args.size = min(args.steps, 4), min(args.size, 128)
    seconds = measure(args)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(
        f"SDXL {'tiny' if args.tiny else 'base 1.0'}, {args.size} px, {args.steps} steps, {device}"
    )
    print(f"{'case':<36} {'s/picture':>10} {'vs none':>8}")
    for name, value in seconds.items():
        print(f"{name:<36} {value:>10.3f} {value / seconds['no references']:>7.2f}x")


if __name__ == "__main__":
    main()
