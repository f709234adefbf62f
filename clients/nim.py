"""A self-hosted NVIDIA NIM (`--backend nim`): text to image on a user's own GPU.

`POST {NIM_BASE_URL}/v1/infer`, no authentication, FLUX/SD3.5-shaped bodies, answers in the
artifacts shape and never 202. NVIDIA ships no Stable Video Diffusion NIM, so the motion clip
is a slow push-in over the image, made locally in the SVD clip's shape.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from clients.draft import encode_h264, zoom_frames
from clients.errors import ConfigurationError, FatalServiceError
from clients.generation import (
    SVD_FPS,
    SVD_FRAMES,
    SVD_HEIGHT,
    SVD_WIDTH,
    ClipRequest,
    GeneratedClip,
    GeneratedImage,
    ImageRequest,
)
from clients.nvidia import (
    ClientOptions,
    NvidiaClient,
    _check_finish,
    _flux_size,
    _media_type,
    fit_for_svd,
    parse_image_answer,
)

NIM_VARIABLE = "NIM_BASE_URL"


def nim_base_url() -> str:
    url = os.environ.get(NIM_VARIABLE, "").strip().rstrip("/")
    if not url:
        raise ConfigurationError(f"--backend nim needs {NIM_VARIABLE} (e.g. http://gpu-box:8000)")
    return url


def nim_body(request: ImageRequest) -> dict[str, Any]:
    width, height = _flux_size(request.width, request.height)
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


class NimClient(NvidiaClient):
    """The hosted client's retries, limits and error policy, aimed at a NIM."""

    name = "nim"
    requires_key = False

    def __init__(self, base_url: str, options: ClientOptions | None = None, **kwargs: Any) -> None:
        base_options = options or ClientOptions()
        super().__init__(
            api_key="",
            options=ClientOptions(
                api_base=base_url,
                nvcf_base=base_options.nvcf_base,
                timeout_s=base_options.timeout_s,
                poll_interval_s=base_options.poll_interval_s,
                poll_deadline_s=base_options.poll_deadline_s,
                retry=base_options.retry,
            ),
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"NimClient(base_url={self.options.api_base!r})"

    def image_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        return {"body": nim_body(request), "nim": self.options.api_base}

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        def decode(body: dict[str, Any]) -> tuple[bytes, int]:
            data, reason, seed = parse_image_answer(body)
            _check_finish(reason, "prompt")
            _media_type(data)
            return data, int(seed or request.seed)

        sent, (data, seed) = self._invoke("v1/infer", nim_body(request), decode)
        return GeneratedImage(data=data, media_type=_media_type(data), seed=seed, api_calls=sent)

    def generate_clip(self, request: ClipRequest) -> GeneratedClip:
        frame = fit_for_svd(request.image)
        frames = zoom_frames(frame, request.seed, SVD_FRAMES, SVD_WIDTH, SVD_HEIGHT)
        return GeneratedClip(
            data=encode_h264(frames, SVD_WIDTH, SVD_HEIGHT, SVD_FPS), seed=request.seed, api_calls=0
        )
