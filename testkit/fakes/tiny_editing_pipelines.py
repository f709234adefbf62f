"""A tiny reference-editing pipeline with random weights: FLUX.1 Kontext, built from configs the
way diffusers' own tests build it (one double and one single transformer block, a four-level
VAE without attention, CLIP and T5 text encoders), and saved with diffusers' `save_pretrained`.

Its tokenizers are the ones written for the other tiny pipelines (a small CLIP BPE and a
word-level T5): nothing is downloaded and no hub id is named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testkit.fakes.tiny_pipelines import _text_config, clip_tokenizer, save_pipeline
from testkit.fakes.tiny_video_pipelines import _t5_config, t5_tokenizer

LATENT_CHANNELS = 4
"""Latents 8x smaller than the picture, as with the real model: Kontext resizes each input
picture to about a megapixel, which a full-size latent would make slow even this small."""
T5_LENGTH = 48
"""Tokens per prompt for the tiny T5 (Kontext's `max_sequence_length`)."""


def kontext_pipeline(scratch: Path, seed: int = 0) -> Any:
    """A `FluxKontextPipeline` in memory (its CLIP tokenizer's files are written in
    `scratch`)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    tokenizer_2 = t5_tokenizer(T5_LENGTH)
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * LATENT_CHANNELS,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_t5_config(len(tokenizer_2))["d_model"],
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config(projection=True))
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(T5Config(**_t5_config(len(tokenizer_2))))
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        sample_size=64,
        in_channels=3,
        out_channels=3,
        block_out_channels=[8, 16, 16, 16],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        mid_block_add_attention=False,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=clip_tokenizer(scratch),
        tokenizer_2=tokenizer_2,
        transformer=transformer,
        vae=vae,
        image_encoder=None,
        feature_extractor=None,
    )


def save_kontext(folder: Path, seed: int = 0) -> Path:
    """The tiny Kontext pipeline saved in `folder`."""
    return save_pipeline(
        kontext_pipeline(folder.parent / f".{folder.name}-tokenizer", seed), folder
    )
