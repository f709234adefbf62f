"""Where a local pipeline runs: on the device with the speed recipe (`speed.py`), or offloaded
to the CPU between steps when its weights would not fit the GPU's free memory."""

from __future__ import annotations

import logging
from typing import Any

from clients.generation.local.models import torch_modules
from configs.settings import LocalGenerationSettings

logger = logging.getLogger(__name__)


def prepare_pipeline(
    pipeline: Any, settings: LocalGenerationSettings, device: str, dtype: Any, savers: bool
) -> Any:
    """The pipeline on `device` with the speed recipe, or offloaded when memory is short;
    without progress bars (the run says what it does in its own log)."""
    from clients.generation.local.speed import SpeedRecipe, apply_recipe

    pipeline.set_progress_bar_config(disable=True)
    wanted = savers or settings.cpu_offload == "on"
    offload = device == "cuda" and (
        wanted or (settings.cpu_offload == "auto" and memory_is_short(pipeline))
    )
    recipe = SpeedRecipe(
        name="local",
        dtype=dtype,
        fuse_qkv=False,  # LoRA subjects need the separate projections
        # Measured on an H100: channels-last speeds SDXL up and slows SVD's temporal
        # convolutions down by 13 % (README, "Your own GPU").
        channels_last=device == "cuda" and not isinstance(pipeline, video_pipeline_class()),
        vae_tiling=savers,
        compile_mode="default" if settings.compile is True and device == "cuda" else "none",
        tf32=device == "cuda",
    )
    if offload:
        pipeline.enable_model_cpu_offload()
        logger.info("local backend: the model is offloaded to the CPU between steps (less memory)")
        vae = getattr(pipeline, "vae", None)
        if vae is not None and hasattr(vae, "use_tiling"):
            vae.use_tiling = True
        return pipeline
    return apply_recipe(pipeline, recipe, device)


def video_pipeline_class() -> Any:
    _, diffusers = torch_modules()
    return diffusers.StableVideoDiffusionPipeline


def memory_is_short(pipeline: Any) -> bool:
    """Whether the pipeline's weights and working memory would not fit the GPU's free memory."""
    torch, _ = torch_modules()
    free, _ = torch.cuda.mem_get_info()
    weights = sum(
        parameter.numel() * parameter.element_size()
        for component in pipeline.components.values()
        if isinstance(component, torch.nn.Module)
        for parameter in component.parameters()
    )
    return bool(weights * 1.6 > free)
