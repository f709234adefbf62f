"""The pipelines `benchmarks/local_generation.py` times: SDXL base 1.0 and SVD-XT at their real
architectures, built from the configs in `benchmarks/local_configs/` with random weights (which
cost exactly what trained ones cost), or tiny ones for a CPU (`--tiny`); saved to and loaded
from `--build DIR`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

CONFIGS = Path(__file__).resolve().parent / "local_configs"
_SDXL_MODELS = ("unet", "vae", "text_encoder", "text_encoder_2")


def _tiny_sdxl() -> dict[str, dict[str, Any]]:
    text: dict[str, Any] = dict(vocab_size=1000, max_position_embeddings=77, projection_dim=32)
    text |= dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)
    unet: dict[str, Any] = dict(
        block_out_channels=[32, 64],
        layers_per_block=2,
        sample_size=32,
        attention_head_dim=[2, 4],
        down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        cross_attention_dim=64,
        transformer_layers_per_block=[1, 2],
        projection_class_embeddings_input_dim=80,
    )
    vae: dict[str, Any] = dict(block_out_channels=[32, 64], latent_channels=4, sample_size=128)
    vae["down_block_types"] = ["DownEncoderBlock2D"] * 2
    vae["up_block_types"] = ["UpDecoderBlock2D"] * 2
    return {"unet": unet, "vae": vae, "text_encoder": text, "text_encoder_2": text}


def _tiny_svd() -> dict[str, dict[str, Any]]:
    unet: dict[str, Any] = dict(
        block_out_channels=[32, 64],
        layers_per_block=2,
        sample_size=32,
        in_channels=8,
        out_channels=4,
        cross_attention_dim=32,
        num_attention_heads=8,
        num_frames=4,
        down_block_types=["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
        up_block_types=["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    vae: dict[str, Any] = dict(block_out_channels=[32, 64], latent_channels=4)
    vae |= dict(down_block_types=["DownEncoderBlock2D"] * 2)
    image: dict[str, Any] = dict(
        hidden_size=32,
        projection_dim=32,
        num_hidden_layers=5,
        num_attention_heads=4,
        image_size=224,
        intermediate_size=37,
        patch_size=14,
    )
    return {"unet": unet, "vae": vae, "image_encoder": image}


def _read(folder: Path) -> dict[str, Any]:
    name = "config.json" if (folder / "config.json").exists() else "scheduler_config.json"
    return dict(json.loads((folder / name).read_text()))


def libraries() -> tuple[Any, Any]:
    """diffusers and transformers, imported when first needed (untyped: Any)."""
    import diffusers
    import transformers

    return diffusers, transformers


def _diffusers_model(cls: Any, config: dict[str, Any]) -> Any:
    return cls.from_config({k: v for k, v in config.items() if not k.startswith("_")})


def _scheduler(d: Any, root: Path) -> Any:
    with torch.device("cpu"):  # its tables stay on the host, whatever device builds the models
        return d.EulerDiscreteScheduler.from_pretrained(root / "scheduler")


def _clip_model(cls: Any, config_cls: Any, config: dict[str, Any]) -> Any:
    return cls(config_cls(**{k: v for k, v in config.items() if k != "architectures"}))


def build_sdxl(tiny: bool) -> Any:
    """SDXL base 1.0 with random weights, from the repository's configs (or tiny ones)."""
    d, t = libraries()
    root = CONFIGS / "sdxl"
    parts = _tiny_sdxl() if tiny else {}
    config = {name: parts.get(name) or _read(root / name) for name in _SDXL_MODELS}
    return d.StableDiffusionXLPipeline(
        vae=_diffusers_model(d.AutoencoderKL, config["vae"]),
        text_encoder=_clip_model(t.CLIPTextModel, t.CLIPTextConfig, config["text_encoder"]),
        text_encoder_2=_clip_model(
            t.CLIPTextModelWithProjection, t.CLIPTextConfig, config["text_encoder_2"]
        ),
        tokenizer=t.CLIPTokenizer.from_pretrained(root / "tokenizer"),
        tokenizer_2=t.CLIPTokenizer.from_pretrained(root / "tokenizer_2"),
        unet=_diffusers_model(d.UNet2DConditionModel, config["unet"]),
        scheduler=_scheduler(d, root),
        add_watermarker=False,
    )


def build_svd(tiny: bool) -> Any:
    """SVD-XT with random weights, from the repository's configs (or tiny ones)."""
    d, t = libraries()
    root = CONFIGS / "svd-xt"
    parts = _tiny_svd() if tiny else {}
    config = {name: parts.get(name) or _read(root / name) for name in ("unet", "vae")}
    encoder = parts.get("image_encoder") or _read(root / "image_encoder")
    return d.StableVideoDiffusionPipeline(
        vae=_diffusers_model(d.AutoencoderKLTemporalDecoder, config["vae"]),
        image_encoder=_clip_model(t.CLIPVisionModelWithProjection, t.CLIPVisionConfig, encoder),
        unet=_diffusers_model(d.UNetSpatioTemporalConditionModel, config["unet"]),
        scheduler=_scheduler(d, root),
        feature_extractor=t.CLIPImageProcessor.from_pretrained(root / "feature_extractor"),
    )


def load_pipelines(args: argparse.Namespace, device: str) -> tuple[Any, Any]:
    """Both pipelines with random weights: built on `device`, or saved to/loaded from --build."""
    d, _ = libraries()
    pipelines = []
    for name, build, cls in (
        ("sdxl", build_sdxl, d.StableDiffusionXLPipeline),
        ("svd-xt", build_svd, d.StableVideoDiffusionPipeline),
    ):
        if name == "sdxl" and args.clips_only:
            pipelines.append(None)  # no SDXL: make_images hands out stand-in images
            continue
        folder = Path(args.build) / name if args.build else None
        if folder is not None and (folder / "model_index.json").exists():
            pipeline = cls.from_pretrained(folder, torch_dtype=torch.float16)
        else:
            with torch.device(device):
                pipeline = build(args.tiny)
            if folder is not None:
                pipeline.save_pretrained(folder)
        pipeline.set_progress_bar_config(disable=True)
        pipelines.append(pipeline)
    return pipelines[0], pipelines[1]


def parameter_counts(sdxl: Any, svd: Any) -> dict[str, int]:
    """Parameters of every model, evidence that the architectures are the real ones."""
    models = {f"sdxl.{n}": getattr(sdxl, n) for n in _SDXL_MODELS} if sdxl else {}
    models |= {f"svd.{n}": getattr(svd, n) for n in ("unet", "vae", "image_encoder")}
    return {name: sum(p.numel() for p in model.parameters()) for name, model in models.items()}
