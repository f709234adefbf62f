"""Tiny diffusers pipelines with random weights, built on the spot for `--backend local`.

Each builder makes a real pipeline of the kind a user names in `generation.local.image_model`
or `video_model` (Stable Diffusion 1.x/2.x, SDXL, Stable Video Diffusion), only a few thousand
parameters wide, seeded so that the same call writes the same weights, and saves it with
diffusers' own `save_pretrained` in the standard folder layout (`model_index.json`, one folder
per component). The CLIP tokenizer is written here too (a byte-level BPE vocabulary and a few
merges): nothing is downloaded and no hub id is named. A whole pipeline call takes a fraction
of a second on a CPU.

torch, diffusers and transformers are imported inside the builders, so importing this module
costs nothing where they are missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKENIZER_MAX_LENGTH = 77
"""Tokens per prompt, as in every CLIP text encoder (the pipelines pad and truncate to it)."""
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MERGES = [
    ("t", "h"),
    ("th", "e</w>"),
    ("a", "n"),
    ("an", "d</w>"),
    ("i", "n"),
    ("in", "g</w>"),
    ("o", "n</w>"),
    ("e", "r</w>"),
    ("s", "k"),
    ("sk", "s</w>"),
    ("l", "i"),
    ("li", "on</w>"),
]
"""A handful of merges, so that the tokenizer is a real BPE one ('sks', 'lion', 'the')."""
TEXT_HIDDEN = 32
"""Width of every tiny CLIP encoder (text and vision) and of the text projection."""
LORA_RANK = 4


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) byte-to-character table: every byte as one printable character."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, [chr(code) for code in codes], strict=True))


def tokenizer_vocabulary() -> dict[str, int]:
    """The 256 byte characters, their end-of-word forms, the merges' results, then the two
    special tokens (last, as in CLIP's own vocabulary)."""
    characters = list(bytes_to_unicode().values())
    tokens = [*characters, *(f"{c}</w>" for c in characters), *("".join(m) for m in MERGES)]
    tokens += [BOS, EOS]
    return {token: index for index, token in enumerate(dict.fromkeys(tokens))}


def write_tokenizer_files(folder: Path) -> Path:
    """`vocab.json` and `merges.txt` of a small CLIP BPE tokenizer, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(tokenizer_vocabulary()), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{left} {right}" for left, right in MERGES)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def clip_tokenizer(folder: Path) -> Any:
    """A `CLIPTokenizer` over the files `write_tokenizer_files` writes into `folder`."""
    from transformers import CLIPTokenizer

    write_tokenizer_files(folder)
    return CLIPTokenizer.from_pretrained(
        folder,
        local_files_only=True,
        model_max_length=TOKENIZER_MAX_LENGTH,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
    )


def _text_config(projection: bool = False) -> Any:
    from transformers import CLIPTextConfig

    vocabulary = tokenizer_vocabulary()
    return CLIPTextConfig(
        vocab_size=len(vocabulary),
        bos_token_id=vocabulary[BOS],
        eos_token_id=vocabulary[EOS],
        pad_token_id=vocabulary[EOS],
        hidden_size=TEXT_HIDDEN,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=TOKENIZER_MAX_LENGTH,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        projection_dim=TEXT_HIDDEN if projection else 512,
    )


def _vae(seed: int) -> Any:
    """A 4-level VAE: pictures are 8x their latents, as with the real models (the pipelines
    read the factor from its configuration)."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=[8, 16, 16, 16],
        layers_per_block=1,
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )


def _scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
    )


def sd_pipeline(seed: int = 0) -> Any:
    """A Stable Diffusion 1.x/2.x-family pipeline (`StableDiffusionPipeline`), in memory."""
    import tempfile

    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = _vae(seed)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config())
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = clip_tokenizer(Path(scratch))
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sdxl_pipeline(seed: int = 0) -> Any:
    """An SDXL-family pipeline (`StableDiffusionXLPipeline`), shaped as diffusers' own SDXL
    tests shape theirs: a `text_time` UNet conditioned on two text encoders."""
    import tempfile

    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 time ids x 8 + text_encoder_2's 32
        cross_attention_dim=64,  # both text encoders' hidden states, side by side
        norm_num_groups=1,
    )
    vae = _vae(seed)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config())
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(projection=True))
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = clip_tokenizer(Path(scratch) / "one")
        tokenizer_2 = clip_tokenizer(Path(scratch) / "two")
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=_scheduler(),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


def svd_pipeline(seed: int = 0) -> Any:
    """A Stable Video Diffusion pipeline, configured as diffusers' own SVD tests configure
    theirs (its image encoder sees 224x224 pictures, as the pipeline resizes them to that)."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=TEXT_HIDDEN,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,  # fps, motion bucket, noise: 3 x 32
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        trained_betas=None,
        use_karras_sigmas=True,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLTemporalDecoder(  # 4 levels of 32 channels (its norms have 32 groups)
        block_out_channels=[32, 32, 32, 32],
        layers_per_block=1,
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        latent_channels=4,
    )
    torch.manual_seed(seed)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=TEXT_HIDDEN,
            projection_dim=TEXT_HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=224,
            intermediate_size=37,
            patch_size=32,
        )
    )
    feature_extractor = CLIPImageProcessor(crop_size=224, size=224)
    return StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=feature_extractor,
    )


def save_pipeline(pipeline: Any, folder: Path) -> Path:
    """`pipeline` saved by diffusers in `folder` (safetensors weights); returns `folder`."""
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def save_sd(folder: Path, seed: int = 0) -> Path:
    return save_pipeline(sd_pipeline(seed), folder)


def save_sdxl(folder: Path, seed: int = 0) -> Path:
    return save_pipeline(sdxl_pipeline(seed), folder)


def save_svd(folder: Path, seed: int = 0) -> Path:
    return save_pipeline(svd_pipeline(seed), folder)


def save_unet_lora(pipeline: Any, path: Path, seed: int = 1) -> Path:
    """A LoRA for `pipeline`'s UNet attention projections, saved by the pipeline class's
    `save_lora_weights` as one .safetensors file at `path`.

    Its weights are random (`init_lora_weights=False`), not zero, so that it changes the
    picture. The adapter is taken off `pipeline` again afterwards.
    """
    import tempfile

    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = pipeline.unet
    torch.manual_seed(seed)
    config = LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_RANK,
        init_lora_weights=False,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
    )
    unet.add_adapter(config, adapter_name="tiny")
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name="tiny"))
    with tempfile.TemporaryDirectory() as scratch:
        type(pipeline).save_lora_weights(
            scratch,
            unet_lora_layers=layers,
            weight_name="lora.safetensors",
            safe_serialization=True,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((Path(scratch) / "lora.safetensors").read_bytes())
    unet.delete_adapters("tiny")
    return path


@dataclass(frozen=True)
class Models:
    sd: Path
    sdxl: Path
    svd: Path
    lora: Path
    sdxl_lora: Path


def build_models(root: Path) -> Models:
    """The tiny pipelines, built and saved under `root`."""
    sd = sd_pipeline()
    sdxl = sdxl_pipeline()
    return Models(
        sd=save_pipeline(sd, root / "sd"),
        sdxl=save_pipeline(sdxl, root / "sdxl"),
        svd=save_svd(root / "svd"),
        lora=save_unet_lora(sd, root / "lora.safetensors"),
        sdxl_lora=save_unet_lora(sdxl, root / "sdxl-lora.safetensors"),
    )
