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
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx

from clients.generation.answers import final_body
from clients.generation.assets import delete_asset, upload_asset
from clients.generation.backend import BackendKind
from clients.generation.http import (
    DEFAULT_NVCF_BASE,
    RequestCount,
    ServiceConnection,
    connection_options,
    with_calls,
)
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
from clients.generation.schemas import (
    MODELS,
    SVD,
    model_schema,
    request_body,
    settings_problem,
)
from configs.settings import GenerationSettings
from domain.errors import (
    ConfigurationError,
    ModelUnavailableError,
    StoryboardError,
    TransientServiceError,
)
from domain.media import ClipRequest, GeneratedClip, GeneratedImage, ImageRequest
from domain.storyboard import StoryboardSpec

API_KEY_VARIABLE = "NVIDIA_API_KEY"
DEFAULT_API_BASE = "https://ai.api.nvidia.com/v1/genai"
INLINE_IMAGE_LIMIT = 180_000  # base64 characters; above this the image goes as an asset
KEY_CHECK_TIMEOUT_S = 5.0

logger = logging.getLogger(__name__)


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
    """The request body for `request.model`, built from its schema (`schemas.py`)."""
    schema = model_schema(request.model)
    values: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "cfg_scale": request.cfg_scale,
        "steps": request.steps,
        "sampler": request.sampler,
        "seed": request.seed,
    }
    if "aspect_ratio" in schema.fields:
        values["aspect_ratio"] = aspect_ratio(request.width, request.height)
    if schema.fields.get("width") is not None and len(schema.fields["width"].choices) > 1:
        values["width"], values["height"] = flux_size(request.width, request.height)
    return request_body(schema, values)


def for_model(request: ImageRequest, model: str) -> ImageRequest:
    """`request` for another hosted model: values that model refuses become its defaults (the
    user's own settings were checked against every fallback model at load time)."""
    fields = model_schema(model).fields
    cfg, steps = fields["cfg_scale"], fields["steps"]
    return replace(
        request,
        model=model,
        cfg_scale=request.cfg_scale if cfg.accepts(request.cfg_scale) else float(cfg.default),
        steps=request.steps if steps.accepts(request.steps) else int(steps.default),
    )


def svd_input(image: bytes) -> tuple[bytes, str]:
    """The SVD input as JPEG bytes and their base64: the best quality from 95 down to 80 that
    fits inline; quality 80 (sent as an asset) when none does."""
    frame = fit_for_svd(image)
    best: tuple[bytes, str] | None = None
    low, high = 80, 95
    while low <= high:
        quality = (low + high) // 2
        buffer = io.BytesIO()
        frame.save(buffer, format="JPEG", quality=quality, optimize=True)
        encoded = base64.b64encode(buffer.getvalue()).decode()
        if len(encoded) <= INLINE_IMAGE_LIMIT:
            best, low = (buffer.getvalue(), encoded), quality + 1
        else:
            high = quality - 1
    if best is not None:
        return best
    buffer = io.BytesIO()
    frame.save(buffer, format="JPEG", quality=80, optimize=True)
    return buffer.getvalue(), base64.b64encode(buffer.getvalue()).decode()


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

    def __init__(self, connection: ServiceConnection, fallback_models: Sequence[str] = ()) -> None:
        self.connection = connection
        self.fallback_models = tuple(fallback_models)
        self._announced: set[str] = set()

    def __repr__(self) -> str:
        return f"NvidiaClient(api_base={self.connection.options.api_base!r})"

    def close(self) -> None:
        self.connection.close()

    def image_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        return {"body": image_body(request), "model": request.model}

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        """The image from `request.model`, or from the first fallback model that answers when
        that one is retired; ModelUnavailableError when none is left."""
        calls = RequestCount()
        refused: ModelUnavailableError | None = None
        for model in dict.fromkeys((request.model, *self.fallback_models)):
            attempt = request if model == request.model else for_model(request, model)
            try:
                sent, (data, seed) = self.connection.invoke(
                    model_schema(model).path,
                    image_body(attempt),
                    image_decoder(request.seed),
                    calls=calls,
                )
            except ModelUnavailableError as exc:
                refused = refused or exc
                continue
            if model != request.model:
                self._announce(request.model, model)
            media_type = image_media_type(data)
            return GeneratedImage(
                data, media_type, seed, api_calls=sent, resent=calls.resent, model=model
            )
        assert refused is not None
        message = unavailable_message(request.model, self.fallback_models, refused)
        raise with_calls(ModelUnavailableError(message, request.model), calls)

    def _announce(self, retired: str, fallback: str) -> None:
        if retired not in self._announced:
            self._announced.add(retired)
            logger.warning(
                "image model %s is retired or unavailable; using %s (generation.fallback_models)",
                retired,
                fallback,
            )

    def image_model_name(self, request: ImageRequest) -> str:
        return request.model

    def clip_model_name(self) -> str:
        return SVD.path

    def clip_fingerprint(self, request: ClipRequest) -> dict[str, Any]:
        return request.fingerprint()

    def generate_clip(self, request: ClipRequest) -> GeneratedClip:
        """The clip, its input image sent inline when it fits, else as an asset (deleted
        after the job); every request counted."""
        data, encoded = svd_input(request.image)
        values = {"seed": request.seed, "cfg_scale": request.cfg_scale}
        body = request_body(SVD, values | {"motion_bucket_id": request.motion_bucket_id})
        calls, headers, asset_id = RequestCount(), {}, None
        try:
            if len(encoded) <= INLINE_IMAGE_LIMIT:
                body["image"] = f"data:image/jpeg;base64,{encoded}"
            else:
                asset_id = upload_asset(self.connection, data, "image/jpeg", calls)
                body["image"] = f"data:image/jpeg;asset_id,{asset_id}"
                headers = {
                    "NVCF-INPUT-ASSET-REFERENCES": asset_id,
                    "NVCF-FUNCTION-ASSET-IDS": asset_id,
                }
            _, (video, seed) = self.connection.invoke(
                SVD.path, body, _decode_clip(request.seed), headers, calls
            )
        except StoryboardError as exc:
            raise with_calls(exc, calls) from None
        finally:
            if asset_id is not None:
                delete_asset(self.connection, asset_id, calls)
        return GeneratedClip(data=video, seed=seed, api_calls=calls.sent, resent=calls.resent)


def unavailable_message(
    model: str, fallbacks: Sequence[str], refused: ModelUnavailableError
) -> str:
    """One line: which model is gone, and which hosted models may be used instead."""
    others = [name for name in MODELS if name != model and name not in fallbacks]
    tried = f" and its fallbacks {', '.join(fallbacks)}" if fallbacks else ""
    return (
        f"image model '{model}'{tried} retired or not available to this account ({refused});"
        f" hosted models that may work: {', '.join(others) or 'none'}"
        " (set generation.image_model, or generation.fallback_models to switch automatically)"
    )


def check_key(settings: GenerationSettings) -> None:
    """The key is set, and every setting is one the hosted models accept (exit 2 otherwise)."""
    if not read_api_key():
        raise ConfigurationError(f"--backend nvidia needs {API_KEY_VARIABLE} to be set")
    check_settings(settings)


def check_settings(settings: GenerationSettings, image_model: str | None = None) -> None:
    """ConfigurationError naming the setting and its allowed range when the image model, a
    fallback model or SVD would refuse a value of `settings`."""
    values = settings.model_dump()
    for model in dict.fromkeys((image_model or settings.image_model, *settings.fallback_models)):
        problem = settings_problem(model_schema(model), values, "generation.")
        if problem:
            raise ConfigurationError(problem)
    problem = settings_problem(SVD, values, "generation.")
    if problem:
        raise ConfigurationError(problem)


def check_storyboard(settings: GenerationSettings, spec: StoryboardSpec) -> None:
    """What a storyboard asks of the hosted models: its image model takes the settings, and no
    scene asks SVD for a motion it refuses."""
    check_settings(settings, spec.image_model)
    svd_bucket = SVD.fields["motion_bucket_id"]
    for scene in spec.scenes:
        bucket = scene.motion_bucket_id
        if bucket is not None and not svd_bucket.accepts(bucket):
            raise ConfigurationError(
                f"scene '{scene.id}': motion_bucket_id {bucket} is refused by {SVD.path}"
                f" ({svd_bucket.allowed()}; other values need --backend local)"
            )


def check_key_accepted(transport: httpx.BaseTransport | None = None) -> None:
    """Before any work: NVCF's status of a request id that was never issued, which costs
    nothing. A refused key is answered 401/403 (FatalServiceError, the run stops before it
    transcribes anything); an accepted one 404. Any other answer, or none, leaves the key to
    the first paid request."""
    key = read_api_key()
    if not key:
        return
    nvcf = os.environ.get("NVCF_API_BASE", DEFAULT_NVCF_BASE).rstrip("/")
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    try:
        with httpx.Client(transport=transport, timeout=KEY_CHECK_TIMEOUT_S) as client:
            response = client.get(f"{nvcf}/pexec/status/{uuid.uuid4()}", headers=headers)
    except httpx.TransportError:
        return
    if response.status_code in (401, 403):
        final_body(response, "NVIDIA API", lambda text: text.replace(key, "***"))


def create(settings: GenerationSettings, limiter: RequestBudget) -> NvidiaClient:
    """Built by `clients/services.py` once `check_key` passed."""
    key = read_api_key() or ""
    api_base = os.environ.get("NVIDIA_API_BASE", DEFAULT_API_BASE)
    connection = ServiceConnection(
        "NVIDIA API", connection_options(settings, api_base), limiter, api_key=key
    )
    return NvidiaClient(connection, settings.fallback_models)


KIND = BackendKind(
    name="nvidia",
    create=create,
    check=check_key,
    check_storyboard=check_storyboard,
    check_ready=check_key_accepted,
)
