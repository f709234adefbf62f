"""Tiny text-steered image-to-video pipelines with random weights: Wan (2.1 with its CLIP image
encoder, 2.2 TI2V without) and LTX-Video, built from configs the way diffusers' own tests build
them, and saved with diffusers' `save_pretrained`.

Their text encoders are T5 (UMT5 for Wan) from a config, and the tokenizer is written here: a
word-level vocabulary of a few hundred words behind transformers' fast tokenizer, with T5's
special tokens. Nothing is downloaded and no hub id is named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEXT_WIDTH = 32
WORDS = [
    "a",
    "the",
    "lion",
    "walks",
    "through",
    "misty",
    "jungle",
    "at",
    "dawn",
    "night",
    "rests",
    "on",
    "rock",
    "beneath",
    "sky",
    "full",
    "of",
    "stars",
    "river",
    "flows",
    "storm",
    "breaks",
    "over",
    "sea",
    "slow",
    "dolly",
    "in",
    "turns",
    "its",
    "head",
    "camera",
    "pans",
    "left",
    "right",
    "calm",
    "lake",
    "dusk",
    "leaves",
    "rustle",
    "water",
    "wind",
    "bird",
    "flies",
    "toward",
    "hand-drawn",
    "storyboard",
    "sketch",
]


def t5_tokenizer(max_length: int = 64) -> Any:
    """A fast tokenizer with T5's special tokens over `WORDS` (unknown words are `<unk>`)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocabulary = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in WORDS:
        vocabulary.setdefault(word, len(vocabulary))
    backend = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def _t5_config(vocab_size: int) -> dict[str, Any]:
    return {
        "vocab_size": vocab_size,
        "d_model": TEXT_WIDTH,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 1,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "pad_token_id": 0,
        "eos_token_id": 1,
    }


def wan_pipeline(seed: int = 0, *, image_encoder: bool = True) -> Any:
    """Wan image-to-video: 2.1's layout with a CLIP image encoder, or without one (2.2 TI2V,
    which conditions on the picture's latents alone)."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        UMT5Config,
        UMT5EncoderModel,
    )

    tokenizer = t5_tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(**_t5_config(len(tokenizer))))
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36 if image_encoder else 16,
        out_channels=16,
        text_dim=TEXT_WIDTH,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4 if image_encoder else None,
    )
    parts: dict[str, Any] = {}
    if image_encoder:
        torch.manual_seed(seed)
        vision = CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
        parts["image_encoder"] = CLIPVisionModelWithProjection(vision)
        parts["image_processor"] = CLIPImageProcessor(crop_size=32, size=32)
    return WanImageToVideoPipeline(
        expand_timesteps=not image_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        **parts,
    )


def ltx_pipeline(seed: int = 0) -> Any:
    """LTX-Video image-to-video."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    tokenizer = t5_tokenizer()
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(**_t5_config(len(tokenizer))))
    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=2,
        caption_channels=TEXT_WIDTH,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return LTXImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def save_video_pipeline(pipeline: Any, folder: Path) -> Path:
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def save_transformer_lora(pipeline: Any, path: Path, seed: int = 1) -> Path:
    """A LoRA for `pipeline`'s transformer attention projections (random, not zero, so that it
    changes the clip), saved by the pipeline class's `save_lora_weights` as one file."""
    import tempfile

    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = pipeline.transformer
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v"]
    )
    transformer.add_adapter(config, adapter_name="tiny")
    state = get_peft_model_state_dict(transformer, adapter_name="tiny")
    with tempfile.TemporaryDirectory() as scratch:
        type(pipeline).save_lora_weights(
            scratch,
            transformer_lora_layers=convert_state_dict_to_diffusers(state),
            weight_name="lora.safetensors",
            safe_serialization=True,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((Path(scratch) / "lora.safetensors").read_bytes())
    transformer.delete_adapters("tiny")
    return path
