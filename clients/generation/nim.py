"""A self-hosted NVIDIA NIM (`--backend nim`): text to image on a user's own GPU.

`POST {NIM_BASE_URL}/v1/infer`, no authentication, FLUX/SD3.5-shaped bodies, answers in the
artifacts shape and never 202. NVIDIA ships no Stable Video Diffusion NIM, so the motion clip
is a slow push-in over the image, made locally in the SVD clip's shape.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from clients.generation.backend import PUSH_IN, BackendKind
from clients.generation.http import ServiceConnection, connection_options
from clients.generation.payloads import fit_for_svd, flux_size, image_decoder, image_media_type
from clients.generation.ratelimit import RequestBudget
from clients.media.video import CLIP_ENCODING, encode_frames, push_in_frames
from configs.settings import GenerationSettings
from domain.errors import ConfigurationError, FatalServiceError
from domain.media import (
    SVD_FPS,
    SVD_FRAMES,
    SVD_HEIGHT,
    SVD_WIDTH,
    ClipRequest,
    GeneratedClip,
    GeneratedImage,
    ImageRequest,
)

NIM_VARIABLE = "NIM_BASE_URL"


def nim_base_url() -> str:
    url = os.environ.get(NIM_VARIABLE, "").strip().rstrip("/")
    if not url:
        raise ConfigurationError(f"--backend nim needs {NIM_VARIABLE} (e.g. http://gpu-box:8000)")
    return url


def nim_body(request: ImageRequest) -> dict[str, Any]:
    width, height = flux_size(request.width, request.height)
    schnell = request.model == "flux.1-schnell"
    return {
        "prompt": request.prompt,
        "mode": "base",
        "seed": request.seed,
        "steps": min(4, max(1, request.steps)) if schnell else min(100, max(5, request.steps)),
        "width": width,
        "height": height,
        "cfg_scale": 0.0 if schnell else min(request.cfg_scale, 9.0),
    }


def check_ready(base_url: str, transport: httpx.BaseTransport | None = None) -> None:
    """Raise FatalServiceError unless the NIM answers 200 on /v1/health/ready."""
    try:
        with httpx.Client(transport=transport, timeout=10.0) as client:
            response = client.get(f"{base_url}/v1/health/ready")
    except httpx.TransportError as exc:
        raise FatalServiceError(
            f"NIM at {base_url} is unreachable ({type(exc).__name__})"
        ) from None
    if response.status_code != 200:
        state = "still loading" if response.status_code == 503 else "not ready"
        raise FatalServiceError(f"NIM at {base_url} is {state} (HTTP {response.status_code})")


class NimClient:
    """A NIM's text to image through the shared connection; clips made locally."""

    name = "nim"

    def __init__(self, connection: ServiceConnection) -> None:
        self.connection = connection

    def __repr__(self) -> str:
        return f"NimClient(base_url={self.connection.options.api_base!r})"

    def close(self) -> None:
        self.connection.close()

    def image_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        return {"body": nim_body(request), "nim": self.connection.options.api_base}

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        sent, (data, seed) = self.connection.invoke(
            "v1/infer", nim_body(request), image_decoder(request.seed)
        )
        media_type = image_media_type(data)
        return GeneratedImage(data=data, media_type=media_type, seed=seed, api_calls=sent)

    def image_model_name(self, request: ImageRequest) -> str:
        return request.model

    def clip_model_name(self) -> str:
        return PUSH_IN

    def clip_fingerprint(self, request: ClipRequest) -> dict[str, Any]:
        return request.fingerprint()

    def generate_clip(self, request: ClipRequest) -> GeneratedClip:
        frame = fit_for_svd(request.image)
        frames = push_in_frames(frame, request.seed, SVD_FRAMES, SVD_WIDTH, SVD_HEIGHT)
        data = encode_frames(frames, SVD_FPS, CLIP_ENCODING)
        return GeneratedClip(data=data, seed=request.seed, api_calls=0)


def create(settings: GenerationSettings, limiter: RequestBudget) -> NimClient:
    options = connection_options(settings, nim_base_url(), paid_jobs=False)
    return NimClient(ServiceConnection("NIM", options, limiter))


def check_configured(settings: GenerationSettings) -> None:
    nim_base_url()


def check_answering() -> None:
    check_ready(nim_base_url())


KIND = BackendKind(name="nim", create=create, check=check_configured, check_ready=check_answering)
