"""NVIDIA's hosted generative API (`--backend nvidia`): SDXL, SD3-medium, FLUX.1 and SVD.

Text to image on `ai.api.nvidia.com`, image to video with Stable Video Diffusion, `202`
answers polled on NVCF and large input images sent as NVCF assets, all through the shared
`ServiceConnection` (its failure policy is drawn there). A CONTENT_FILTERED finish reason
raises ContentFilteredError and is never retried.

The API key is read here and nowhere else; no message raised from here contains it.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable
from typing import Any

from clients.generation.backend import BackendKind
from clients.generation.http import ServiceConnection, connection_options
from clients.generation.payloads import (
    aspect_ratio,
    check_finish,
    decode_base64,
    fit_for_svd,
    flux_size,
    image_decoder,
    image_media_type,
)
from clients.generation.ratelimit import RequestBudget
from configs.settings import GenerationSettings
from domain.errors import ConfigurationError, TransientServiceError
from domain.media import ClipRequest, GeneratedClip, GeneratedImage, ImageRequest

API_KEY_VARIABLE = "NVIDIA_API_KEY"
DEFAULT_API_BASE = "https://ai.api.nvidia.com/v1/genai"
SVD_PATH = "stabilityai/stable-video-diffusion"
MODEL_PATHS = {
    "sdxl": "stabilityai/stable-diffusion-xl",
    "sd3-medium": "stabilityai/stable-diffusion-3-medium",
    "flux.1-dev": "black-forest-labs/flux.1-dev",
    "flux.1-schnell": "black-forest-labs/flux.1-schnell",
}
INLINE_IMAGE_LIMIT = 180_000  # base64 characters; above this the image goes as an asset


def read_api_key() -> str | None:
    """The key from NVIDIA_API_KEY, else from the Prefect Secret block STORYBOARD_SECRET_BLOCK
    names."""
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if key:
        return key
    if os.environ.get("STORYBOARD_SECRET_BLOCK", "").strip():
        try:
            from prefect.blocks.system import Secret

            block: Any = Secret.load(os.environ["STORYBOARD_SECRET_BLOCK"])
            value = block.get()
        except Exception:
            return None
        return str(value).strip() or None
    return None


def image_body(request: ImageRequest) -> dict[str, Any]:
    """The request body for `request.model`, within that model's documented limits."""
    if request.model == "sdxl":
        prompts = [{"text": request.prompt, "weight": 1}]
        if request.negative_prompt:
            prompts.append({"text": request.negative_prompt, "weight": -1})
        return {
            "text_prompts": prompts,
            "cfg_scale": request.cfg_scale,
            "sampler": request.sampler,
            "seed": request.seed,
            "steps": max(5, request.steps),
            "width": 1024,
            "height": 1024,
            "samples": 1,
        }
    if request.model == "sd3-medium":
        body: dict[str, Any] = {
            "prompt": request.prompt[:10_000],
            "aspect_ratio": aspect_ratio(request.width, request.height),
            "cfg_scale": min(request.cfg_scale, 9.0),
            "steps": min(100, max(5, request.steps)),
            "seed": request.seed,
            "mode": "text-to-image",
            "output_format": "jpeg",
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        return body
    if request.model in {"flux.1-dev", "flux.1-schnell"}:
        width, height = flux_size(request.width, request.height)
        schnell = request.model == "flux.1-schnell"
        return {
            "prompt": request.prompt,
            "width": width,
            "height": height,
            "cfg_scale": 0.0 if schnell else min(request.cfg_scale, 9.0),
            "steps": min(4, max(1, request.steps)) if schnell else min(100, max(5, request.steps)),
            "seed": request.seed,
            "mode": "base",
            "samples": 1,
        }
    raise ConfigurationError(f"unknown image model '{request.model}'")


def _decode_clip(seed: int) -> Callable[[dict[str, Any]], tuple[bytes, int]]:
    def decode(answer: dict[str, Any]) -> tuple[bytes, int]:
        check_finish(str(answer.get("finish_reason", "SUCCESS")), "clip")
        video = decode_base64(answer.get("video"), "video")
        if b"ftyp" not in video[:64]:
            raise TransientServiceError("the answer's video is not an MP4")
        return video, int(answer.get("seed") or seed)

    return decode


class NvidiaClient:
    """Text to image and image to video on NVIDIA's hosted API; thread-safe."""

    name = "nvidia"

    def __init__(self, connection: ServiceConnection) -> None:
        self.connection = connection

    def __repr__(self) -> str:
        return f"NvidiaClient(api_base={self.connection.options.api_base!r})"

    def close(self) -> None:
        self.connection.close()

    def image_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        return {"body": image_body(request), "model": request.model}

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        path = MODEL_PATHS.get(request.model)
        if path is None:
            raise ConfigurationError(f"unknown image model '{request.model}'")
        sent, (data, seed) = self.connection.invoke(
            path, image_body(request), image_decoder(request.seed)
        )
        media_type = image_media_type(data)
        return GeneratedImage(data=data, media_type=media_type, seed=seed, api_calls=sent)

    def image_model_name(self, request: ImageRequest) -> str:
        return request.model

    def clip_fingerprint(self, request: ClipRequest) -> dict[str, Any]:
        return request.fingerprint()

    def generate_clip(self, request: ClipRequest) -> GeneratedClip:
        buffer = io.BytesIO()
        fit_for_svd(request.image).save(buffer, format="JPEG", quality=90)
        encoded = base64.b64encode(buffer.getvalue()).decode()
        body: dict[str, Any] = {
            "seed": request.seed,
            "cfg_scale": request.cfg_scale,
            "motion_bucket_id": request.motion_bucket_id,
        }
        headers: dict[str, str] = {}
        if len(encoded) <= INLINE_IMAGE_LIMIT:
            body["image"] = f"data:image/jpeg;base64,{encoded}"
        else:
            asset_id = self.connection.upload_asset(buffer.getvalue(), "image/jpeg")
            body["image"] = f"data:image/jpeg;asset_id,{asset_id}"
            headers = {"NVCF-INPUT-ASSET-REFERENCES": asset_id, "NVCF-FUNCTION-ASSET-IDS": asset_id}
        sent, (video, seed) = self.connection.invoke(
            SVD_PATH, body, _decode_clip(request.seed), headers
        )
        return GeneratedClip(data=video, seed=seed, api_calls=sent)


def check_key(settings: GenerationSettings) -> None:
    if not read_api_key():
        raise ConfigurationError(f"--backend nvidia needs {API_KEY_VARIABLE} to be set")


def create(settings: GenerationSettings, limiter: RequestBudget) -> NvidiaClient:
    """Built by `clients/services.py` once `check_key` passed."""
    key = read_api_key() or ""
    api_base = os.environ.get("NVIDIA_API_BASE", DEFAULT_API_BASE)
    connection = ServiceConnection(
        "NVIDIA API", connection_options(settings, api_base), limiter, api_key=key
    )
    return NvidiaClient(connection)


KIND = BackendKind(name="nvidia", create=create, check=check_key)
