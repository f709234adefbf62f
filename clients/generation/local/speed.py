"""How a diffusers pipeline is set up to run fast on a CUDA GPU: one recipe, shared.

`benchmarks/local_generation.py` measures it and a future `--backend local` applies the very
same `SpeedRecipe`, so what was measured is what runs. `apply_recipe` switches the levers on in
this order:

1. dtype: bfloat16 by default. Tensor cores run it as fast as float16, and it has float32's
   range, so the SDXL VAE needs no float32 upcast (diffusers upcasts a float16 VAE whose config
   says `force_upcast`, as SDXL base's does).
2. attention: PyTorch's scaled-dot-product attention (`AttnProcessor2_0`, already diffusers'
   default), optionally steered to one SDPA backend (`attention_context`); q/k/v (and
   cross-attention k/v) projections fused into one matrix product each.
3. memory layout: channels_last for every 2-D convolution (3-D ones keep their layout).
4. VAE: slicing (one image at a time through the decoder when a batch is decoded) and tiling
   where the model has them; for a video pipeline, `decode_chunk_size` frames per decode.
5. compile: optionally `torch.compile` of the denoiser (and VAE decoder), in place.

Batching is not applied here but read from the recipe by the caller: `images_per_call` prompts
go through the denoiser together, `clips_per_call` images per video call. `SEED_STYLE` is the
baseline measured against: a float16 pipeline with diffusers' defaults, one scene per call.

Measured once (the benchmark, one H100 80GB, random weights at the real sizes, diffusers 0.42.1):
SDXL 1024x1024, 30 steps: 3.02 s/image seed-style, 1.37 with `OURS`, 1.04 compiled (115 s of
warm-up). SVD-XT, 25 frames of 1024x576, 25 steps: 18.97 s/clip seed-style, 20.75 with `OURS`
(2 clips per call): for clips these levers are not shown to help yet; which one costs (channels_last
around the temporal Conv3d, the batch of 2, bf16, fused projections) was not isolated.

Imports torch and diffusers only (nothing of the project), so any process can use it; diffusers
is imported when a recipe is applied, so this module loads where diffusers is not installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

CompileMode = Literal[
    "none", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"
]
AttentionBackend = Literal["auto", "flash", "cudnn", "efficient"]
COMPILE_MODES: tuple[CompileMode, ...] = (
    "none",
    "default",
    "reduce-overhead",
    "max-autotune",
    "max-autotune-no-cudagraphs",
)


@dataclass(frozen=True)
class SpeedRecipe:
    """Every lever of one pipeline configuration; each was measured by the benchmark."""

    name: str
    dtype: torch.dtype = torch.bfloat16
    sdpa: bool = True
    fuse_qkv: bool = True
    channels_last: bool = True
    vae_slicing: bool = True
    vae_tiling: bool = False
    compile_mode: CompileMode = "none"
    compile_vae: bool = False
    fullgraph: bool = True
    attention_backend: AttentionBackend = "auto"
    tf32: bool = True
    images_per_call: int = 8
    clips_per_call: int = 2
    decode_chunk_size: int | None = None

    def describe(self) -> str:
        """A one-line summary for tables and logs."""
        dtype = str(self.dtype).removeprefix("torch.")
        parts = [dtype, f"{self.images_per_call} img + {self.clips_per_call} clip/call"]
        if self.fuse_qkv:
            parts.append("fused qkv")
        if self.channels_last:
            parts.append("channels_last")
        if self.attention_backend != "auto":
            parts.append(f"sdpa={self.attention_backend}")
        if self.compile_mode != "none":
            parts.append(f"compile={self.compile_mode}")
        return ", ".join(parts)


SEED_STYLE = SpeedRecipe(
    name="seed-style",
    dtype=torch.float16,
    sdpa=False,
    fuse_qkv=False,
    channels_last=False,
    vae_slicing=False,
    tf32=False,
    images_per_call=1,
    clips_per_call=1,
)
"""float16, loaded once, diffusers' default attention and scheduler, one scene per call."""

OURS = SpeedRecipe(name="ours")
"""bfloat16, SDPA with fused projections, channels_last, VAE slicing, scenes batched."""


def apply_recipe(pipeline: Any, recipe: SpeedRecipe, device: str = "cuda") -> Any:
    """Move `pipeline` to `device` in the recipe's dtype and switch its levers on, in place.

    Works on any pipeline with a `unet` (or `transformer`) and a `vae`; returns the pipeline.
    """
    pipeline.to(device=device, dtype=recipe.dtype)
    set_backend_flags(recipe)
    denoiser = denoiser_of(pipeline)
    models = [model for model in (denoiser, getattr(pipeline, "vae", None)) if model is not None]
    for model in models:
        if recipe.sdpa:
            use_sdpa(model)
        if recipe.fuse_qkv:
            fuse_qkv(model)
        if recipe.channels_last:
            to_channels_last(model)
    vae = getattr(pipeline, "vae", None)
    if vae is not None:
        configure_vae(vae, recipe)
    if recipe.compile_mode != "none":
        compile_module(denoiser, recipe.compile_mode, recipe.fullgraph)
        if recipe.compile_vae and vae is not None:
            compile_module(vae.decoder, recipe.compile_mode, recipe.fullgraph)
    return pipeline


def denoiser_of(pipeline: Any) -> torch.nn.Module:
    """The pipeline's denoiser: its UNet, or its transformer for DiT pipelines."""
    for name in ("unet", "transformer"):
        model = getattr(pipeline, name, None)
        if isinstance(model, torch.nn.Module):
            return model
    raise ValueError(f"{type(pipeline).__name__} has neither a unet nor a transformer")


def set_backend_flags(recipe: SpeedRecipe) -> None:
    """TF32 for the float32 matrix products left, and cuDNN's autotuner for fixed shapes."""
    if recipe.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def use_sdpa(model: torch.nn.Module) -> int:
    """Give every attention module PyTorch's SDPA processor; returns how many were set."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    count = 0
    for module in model.modules():
        if isinstance(module, Attention) and not isinstance(module.processor, AttnProcessor2_0):
            module.set_processor(AttnProcessor2_0())  # type: ignore[no-untyped-call, arg-type, unused-ignore]
            count += 1
    return count


def fuse_qkv(model: torch.nn.Module) -> int:
    """Fuse q/k/v (self-attention) and k/v (cross-attention) into one projection each.

    The generic form of diffusers' `fuse_qkv_projections()`, which only some models have (the
    SDXL UNet and VAE do, the SVD UNet does not). Returns how many modules were fused.
    """
    from diffusers.models.attention_processor import (
        Attention,
        AttnProcessor2_0,
        FusedAttnProcessor2_0,
    )

    count = 0
    for module in model.modules():
        if isinstance(module, Attention) and isinstance(module.processor, AttnProcessor2_0):
            module.fuse_projections(fuse=True)  # type: ignore[no-untyped-call, unused-ignore]
            module.set_processor(FusedAttnProcessor2_0())  # type: ignore[no-untyped-call, arg-type, unused-ignore]
            count += 1
    return count


def to_channels_last(model: torch.nn.Module) -> int:
    """Store every 2-D convolution's weights channels_last; returns how many were changed."""
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            count += 1
    return count


def configure_vae(vae: Any, recipe: SpeedRecipe) -> None:
    """Slicing and tiling, where this VAE implements them (the temporal decoder does not)."""
    if hasattr(vae, "use_slicing"):
        vae.use_slicing = recipe.vae_slicing
    if hasattr(vae, "use_tiling"):
        vae.use_tiling = recipe.vae_tiling


def compile_module(module: torch.nn.Module, mode: CompileMode, fullgraph: bool) -> None:
    """`torch.compile` a module in place; the first call with a new shape pays the compile."""
    import torch._inductor.config as inductor_config

    inductor_config.conv_1x1_as_mm = True
    if mode == "default":
        module.compile(fullgraph=fullgraph)
    else:
        module.compile(mode=mode, fullgraph=fullgraph)


@contextlib.contextmanager
def attention_context(recipe: SpeedRecipe) -> Iterator[None]:
    """Run the enclosed calls with the recipe's SDPA backend first in priority ('auto': torch's)."""
    if recipe.attention_backend == "auto":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    first = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }[recipe.attention_backend]
    rest = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    with sdpa_kernel([first, *[b for b in rest if b != first]], set_priority=True):
        yield


def clip_call_options(recipe: SpeedRecipe, num_frames: int) -> dict[str, int]:
    """Keyword arguments for a video pipeline call: frames decoded per VAE call."""
    if recipe.decode_chunk_size is None:
        return {}
    return {"decode_chunk_size": min(recipe.decode_chunk_size, num_frames)}
