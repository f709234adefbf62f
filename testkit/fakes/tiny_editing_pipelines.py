"""Tiny reference-editing pipelines with random weights: FLUX.1 Kontext (one input picture)
and FLUX.2 klein (several), built from configs the way diffusers' own tests build them (one
double and one single transformer block, a four-level VAE without attention; CLIP and T5, or
Qwen3, text encoders), and saved with diffusers' `save_pretrained`.

Their tokenizers are written here or for the other tiny pipelines (a small CLIP BPE, a
word-level T5, and a word-level one with Qwen's chat template): nothing is downloaded and no
hub id is named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testkit.fakes.tiny_pipelines import _text_config, clip_tokenizer, save_pipeline
from testkit.fakes.tiny_video_pipelines import WORDS, _t5_config, t5_tokenizer

LATENT_CHANNELS = 4
"""Latents 8x smaller than the picture, as with the real model: Kontext resizes each input
picture to about a megapixel, which a full-size latent would make slow even this small."""
VAE_SHAPE: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 16, 16, 16],
    "layers_per_block": 1,
    "latent_channels": LATENT_CHANNELS,
    "norm_num_groups": 8,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "mid_block_add_attention": False,
}
"""Both pipelines' VAE: four levels, no attention."""
TRANSFORMER_SHAPE: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 4 * LATENT_CHANNELS,
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
}
"""Both pipelines' transformer: one double and one single block."""
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
        **TRANSFORMER_SHAPE,
        joint_attention_dim=_t5_config(len(tokenizer_2))["d_model"],
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config(projection=True))
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(T5Config(**_t5_config(len(tokenizer_2))))
    torch.manual_seed(seed)
    vae = AutoencoderKL(**VAE_SHAPE, shift_factor=0.0609, scaling_factor=1.5035)
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


QWEN_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)
"""Qwen's chat layout, as FLUX.2 klein's prompt encoder applies it."""
QWEN_LAYERS = 28
"""Layers of the tiny Qwen3: klein reads hidden states 9, 18 and 27."""


def qwen_tokenizer() -> Any:
    """A word-level fast tokenizer over `WORDS` with Qwen's special tokens and chat template."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    vocabulary = {token: index for index, token in enumerate(QWEN_SPECIAL)}
    for word in (*WORDS, "user", "assistant"):
        vocabulary.setdefault(word, len(vocabulary))
    backend = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return Qwen2TokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )


def klein_pipeline(seed: int = 0) -> Any:
    """A `Flux2KleinPipeline` in memory."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = qwen_tokenizer()
    width = 16
    torch.manual_seed(seed)
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            intermediate_size=width,
            hidden_size=width,
            num_hidden_layers=QWEN_LAYERS,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=8,
            vocab_size=len(tokenizer) + 8,
            max_position_embeddings=512,
        )
    )
    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        **TRANSFORMER_SHAPE,
        joint_attention_dim=3 * width,
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
        guidance_embeds=False,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLFlux2(**VAE_SHAPE)
    return Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


def save_klein(folder: Path, seed: int = 0) -> Path:
    """The tiny FLUX.2 klein pipeline saved in `folder`."""
    return save_pipeline(klein_pipeline(seed), folder)
