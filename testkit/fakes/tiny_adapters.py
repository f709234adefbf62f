"""A tiny IP-Adapter for the tiny SD and SDXL pipelines (testkit/fakes/tiny_pipelines.py), in
diffusers' layout: random adapter weights for the UNet's cross-attention and an image projection,
and a CLIP image encoder from a config. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testkit.fakes.tiny_pipelines import TEXT_HIDDEN

IMAGE_EMBED_DIM = 16
"""Width of the tiny IP-Adapter's image encoder projection."""


def save_ip_adapter(
    pipeline: Any, folder: Path, seed: int = 2, vision: dict[str, Any] | None = None
) -> Path:
    """An IP-Adapter for `pipeline`'s UNet (random weights, diffusers' layout:
    `ip-adapter.safetensors` with its `image_proj` and `ip_adapter` weights) and its CLIP image
    encoder from a config in `image_encoder/`, in `folder`. `vision`: the image encoder's
    `CLIPVisionConfig` fields (default: a tiny one), its `projection_dim` the adapter's width."""
    import torch
    from diffusers.models.attention_processor import IPAdapterAttnProcessor
    from diffusers.models.embeddings import ImageProjection
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    unet = pipeline.unet
    cross = unet.config.cross_attention_dim
    torch.manual_seed(seed)
    weights: dict[str, Any] = {}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        layers = IPAdapterAttnProcessor(
            hidden_size=_hidden_size(unet, name), cross_attention_dim=cross, scale=1.0
        ).state_dict()
        weights[f"ip_adapter.{key_id}.to_k_ip.weight"] = layers["to_k_ip.0.weight"]
        weights[f"ip_adapter.{key_id}.to_v_ip.weight"] = layers["to_v_ip.0.weight"]
        key_id += 2
    encoder = vision or {
        "hidden_size": TEXT_HIDDEN,
        "projection_dim": IMAGE_EMBED_DIM,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "image_size": 32,
        "patch_size": 4,
    }
    projection = ImageProjection(
        cross_attention_dim=cross,
        image_embed_dim=encoder["projection_dim"],
        num_image_text_embeds=4,
    ).state_dict()
    weights["image_proj.proj.weight"] = projection["image_embeds.weight"]
    weights["image_proj.proj.bias"] = projection["image_embeds.bias"]
    weights["image_proj.norm.weight"] = projection["norm.weight"]
    weights["image_proj.norm.bias"] = projection["norm.bias"]
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {key: value.contiguous() for key, value in weights.items()},
        folder / "ip-adapter.safetensors",
    )
    torch.manual_seed(seed)
    CLIPVisionModelWithProjection(CLIPVisionConfig(**encoder)).save_pretrained(
        folder / "image_encoder"
    )
    return folder


def _hidden_size(unet: Any, processor_name: str) -> int:
    channels = list(unet.config.block_out_channels)
    if processor_name.startswith("mid_block"):
        return int(channels[-1])
    block = int(processor_name.split(".")[1])
    return int(
        list(reversed(channels))[block]
        if processor_name.startswith("up_blocks")
        else channels[block]
    )
