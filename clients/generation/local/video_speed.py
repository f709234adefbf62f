"""The speed levers of the transformer video families (Wan, LTX-Video), as their authors
recommend them: a diffusers cache hook that skips transformer work between similar steps
(`generation.local.cache`), an attention backend (`attention`), and regional compilation of
the repeated transformer blocks (`compile: regional`). SVD's UNet takes none of them.

A cache hook or another attention backend changes a clip's pixels, so both are part of its
cache key (`clip_levers`); compiling does not change what is computed.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from configs.settings import LocalGenerationSettings
from domain.errors import ConfigurationError, exception_reason

logger = logging.getLogger(__name__)
ATTENTION_BACKENDS = {"sdpa": "native", "flash": "flash", "sage": "sage"}
"""`attention` values, as diffusers' `set_attention_backend` names them."""
ATTENTION_PACKAGES = {"flash": "flash_attn", "sage": "sageattention"}


def attention_backend(requested: str, device: str) -> str:
    """The attention backend to use: `auto` is flash-attention on a GPU where it is installed,
    else PyTorch's SDPA."""
    package = ATTENTION_PACKAGES.get(requested)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ConfigurationError(
            f"generation.local.attention {requested}: the {package} package is not installed"
        )
    if requested != "auto":
        return requested
    if device == "cuda" and importlib.util.find_spec(ATTENTION_PACKAGES["flash"]) is not None:
        return "flash"
    return "sdpa"


def clip_levers(settings: LocalGenerationSettings, device: str) -> dict[str, Any]:
    """What of the levers changes a transformer family's pixels (for its cache key)."""
    levers: dict[str, Any] = {"attention": attention_backend(settings.attention, device)}
    if settings.cache == "first_block":
        levers["cache"] = {"first_block": settings.cache_threshold}
    elif settings.cache == "taylorseer":
        levers["cache"] = "taylorseer"
    return levers


def transformers_of(pipeline: Any) -> list[Any]:
    """The pipeline's transformers (Wan 2.2 A14B has two: high and low noise)."""
    found = [getattr(pipeline, name, None) for name in ("transformer", "transformer_2")]
    return [model for model in found if model is not None and hasattr(model, "enable_cache")]


def apply_video_levers(pipeline: Any, settings: LocalGenerationSettings, device: str) -> None:
    """The cache hook, the attention backend and regional compilation, on each transformer."""
    backend = ATTENTION_BACKENDS[attention_backend(settings.attention, device)]
    for transformer in transformers_of(pipeline):
        transformer.set_attention_backend(backend)
        if settings.cache != "none":
            try:
                transformer.enable_cache(cache_config(settings))
            except (IndexError, ValueError) as exc:
                raise ConfigurationError(
                    f"generation.local.cache {settings.cache}: does not fit this video model "
                    f"({exception_reason(exc)})"
                ) from None
        if settings.compile == "regional" and device == "cuda":
            transformer.compile_repeated_blocks(fullgraph=True)
    logger.debug("video levers: attention %s, cache %s", backend, settings.cache)


def cache_config(settings: LocalGenerationSettings) -> Any:
    from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig

    if settings.cache == "first_block":
        return FirstBlockCacheConfig(threshold=settings.cache_threshold)
    return TaylorSeerCacheConfig()  # its authors' defaults: a full step every 5


def load_video_lora(pipeline: Any, settings: LocalGenerationSettings) -> None:
    """`video_lora` into the video pipeline's transformer, fused (no cost per step); a LoRA
    that does not fit the model is one line."""
    if settings.video_lora is None or not transformers_of(pipeline):
        return
    try:
        pipeline.load_lora_weights(settings.video_lora, adapter_name="video")
        pipeline.fuse_lora(adapter_names=["video"])
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConfigurationError(
            f"generation.local.video_lora {settings.video_lora}: does not fit the video model "
            f"({exception_reason(exc)})"
        ) from None
