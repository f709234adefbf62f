"""NVIDIA's hosted generative API (and a self-hosted NIM) over httpx.

The contract is `shared/reference/nvidia-genai-api.md`: text to image with SDXL, SD3-medium and
FLUX.1, image to video with Stable Video Diffusion, `202` answers polled on NVCF, large input
images sent as NVCF assets.

Failure policy, in one place:
- 429, 5xx, timeouts, dropped connections and a 200 whose payload does not decode are
  retried here with exponential backoff and full jitter, honouring `Retry-After`; when the
  attempts run out they raise TransientServiceError.
- 401, 402 and 403 raise FatalServiceError, and every later call on the same client raises it
  at once without sending anything: a refused key stops the run after one request.
- 400, 404 and 422 raise GenerationError for that scene.
- A CONTENT_FILTERED finish reason raises ContentFilteredError; it is never retried.

The API key is read here and nowhere else; every message this module raises is scrubbed of it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from PIL import Image

from clients.drawing import cover
from clients.errors import (
    ConfigurationError,
    ContentFilteredError,
    FatalServiceError,
    GenerationError,
    StoryboardError,
    TransientServiceError,
)
from clients.generation import (
    SVD_HEIGHT,
    SVD_WIDTH,
    ClipRequest,
    GeneratedClip,
    GeneratedImage,
    ImageRequest,
)
from clients.ratelimit import RateLimiter, RequestBudget

API_KEY_VARIABLE = "NVIDIA_API_KEY"
DEFAULT_API_BASE = "https://ai.api.nvidia.com/v1/genai"
DEFAULT_NVCF_BASE = "https://api.nvcf.nvidia.com/v2/nvcf"
SVD_PATH = "stabilityai/stable-video-diffusion"
MODEL_PATHS = {
    "sdxl": "stabilityai/stable-diffusion-xl",
    "sd3-medium": "stabilityai/stable-diffusion-3-medium",
    "flux.1-dev": "black-forest-labs/flux.1-dev",
    "flux.1-schnell": "black-forest-labs/flux.1-schnell",
}
INLINE_IMAGE_LIMIT = 180_000  # base64 characters; above this the image goes as an asset
_FATAL_STATUSES = {401, 402, 403}
_PERMANENT_STATUSES = {400, 404, 409, 413, 415, 422}
_FILTERED = "CONTENT_FILTERED"

logger = logging.getLogger(__name__)
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(max(0.0, retry_after_s), self.max_delay_s * 4)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class ClientOptions:
    api_base: str = DEFAULT_API_BASE
    nvcf_base: str = DEFAULT_NVCF_BASE
    timeout_s: float = 120.0
    poll_interval_s: float = 1.0
    poll_deadline_s: float = 900.0
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def from_environment(cls, **overrides: Any) -> ClientOptions:
        return cls(
            api_base=os.environ.get("NVIDIA_API_BASE", DEFAULT_API_BASE).rstrip("/"),
            nvcf_base=os.environ.get("NVCF_API_BASE", DEFAULT_NVCF_BASE).rstrip("/"),
            **overrides,
        )


def read_api_key() -> str | None:
    """The key from NVIDIA_API_KEY, else from a Prefect Secret block named `nvidia-api-key`."""
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


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _problem_detail(response: httpx.Response) -> str:
    """A short reason from an error body: problem+json detail, 422 msg, or plain text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return text[0][:200] if text else response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            first = detail[0]
            location = ".".join(str(part) for part in first.get("loc", []))
            return f"{location}: {first.get('msg', 'invalid')}"[:200]
        if detail:
            return str(detail).splitlines()[0][:200]
    return response.reason_phrase


def fit_for_svd(data: bytes) -> Image.Image:
    """Scale and centre-crop an image to SVD's 1024x576."""
    return cover(Image.open(io.BytesIO(data)).convert("RGB"), SVD_WIDTH, SVD_HEIGHT)


def image_body(request: ImageRequest) -> dict[str, Any]:
    """The request body for `request.model`, within that model's documented limits."""
    steps = request.steps
    cfg = request.cfg_scale
    if request.model == "sdxl":
        prompts = [{"text": request.prompt, "weight": 1}]
        if request.negative_prompt:
            prompts.append({"text": request.negative_prompt, "weight": -1})
        return {
            "text_prompts": prompts,
            "cfg_scale": cfg,
            "sampler": request.sampler,
            "seed": request.seed,
            "steps": max(5, steps),
            "width": 1024,
            "height": 1024,
            "samples": 1,
        }
    if request.model == "sd3-medium":
        body: dict[str, Any] = {
            "prompt": request.prompt[:10_000],
            "aspect_ratio": _aspect_ratio(request.width, request.height),
            "cfg_scale": min(cfg, 9.0),
            "steps": min(100, max(5, steps)),
            "seed": request.seed,
            "mode": "text-to-image",
            "output_format": "jpeg",
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        return body
    if request.model in {"flux.1-dev", "flux.1-schnell"}:
        width, height = _flux_size(request.width, request.height)
        schnell = request.model == "flux.1-schnell"
        return {
            "prompt": request.prompt,
            "width": width,
            "height": height,
            "cfg_scale": 0.0 if schnell else min(cfg, 9.0),
            "steps": min(4, max(1, steps)) if schnell else min(100, max(5, steps)),
            "seed": request.seed,
            "mode": "base",
            "samples": 1,
        }
    raise ConfigurationError(f"unknown image model '{request.model}'")


def _aspect_ratio(width: int, height: int) -> str:
    choices = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "5:4": 1.25, "4:5": 0.8}
    choices |= {"3:2": 1.5, "2:3": 2 / 3}
    target = width / height
    return min(choices, key=lambda name: abs(choices[name] - target))


def _flux_size(width: int, height: int) -> tuple[int, int]:
    """The largest size on FLUX's grid (768..1344, step 64) with about the wanted shape."""
    sizes = [(w, h) for w in range(768, 1345, 64) for h in range(768, 1345, 64)]
    target = width / height
    return min(sizes, key=lambda size: (abs(size[0] / size[1] - target), -size[0] * size[1]))


def _decode_base64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise TransientServiceError(f"the answer had no {what}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TransientServiceError(f"the answer's {what} is not valid base64") from None


def parse_image_answer(body: Mapping[str, Any]) -> tuple[bytes, str, int | None]:
    """(image bytes, finish reason, seed) from either answer shape."""
    if "artifacts" in body:
        artifacts = body.get("artifacts")
        if not isinstance(artifacts, list) or not artifacts or not isinstance(artifacts[0], dict):
            raise TransientServiceError("the answer had no artifacts")
        first = artifacts[0]
        reason = str(first.get("finishReason", "SUCCESS"))
        data = b"" if reason == _FILTERED else _decode_base64(first.get("base64"), "image")
        return data, reason, first.get("seed")
    reason = str(body.get("finish_reason", "SUCCESS"))
    data = b"" if reason == _FILTERED else _decode_base64(body.get("image"), "image")
    return data, reason, body.get("seed")


def _media_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise TransientServiceError("the answer's image is neither PNG, JPEG nor WebP")


class NvidiaClient:
    """Text to image and image to video on NVIDIA's hosted API.

    Thread-safe: one client (one connection pool, one rate limiter) serves every scene task
    of a process. `transport` swaps the network for tests (httpx.MockTransport).
    """

    name = "nvidia"
    requires_key = True

    def __init__(
        self,
        api_key: str | None = None,
        options: ClientOptions | None = None,
        limiter: RequestBudget | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = api_key if api_key is not None else read_api_key()
        if not key and self.requires_key:
            raise ConfigurationError(f"the nvidia backend needs {API_KEY_VARIABLE} to be set")
        self._key = key or ""
        self.options = options or ClientOptions.from_environment()
        self.limiter: RequestBudget = limiter or RateLimiter(per_minute=40)
        self._sleep = sleep
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(self.options.timeout_s, connect=15.0),
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._fatal: str | None = None
        self._key_accepted = threading.Event()
        self._probe = threading.Lock()
        self._lock = threading.Lock()
        self.requests_sent = 0

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"NvidiaClient(api_base={self.options.api_base!r})"

    # -- public API -------------------------------------------------------------------------

    def image_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        return {"body": image_body(request), "model": request.model}

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        path = MODEL_PATHS.get(request.model)
        if path is None:
            raise ConfigurationError(f"unknown image model '{request.model}'")

        def decode(body: dict[str, Any]) -> tuple[bytes, int]:
            data, reason, seed = parse_image_answer(body)
            _check_finish(reason, "prompt")
            _media_type(data)
            return data, int(seed or request.seed)

        sent, (data, seed) = self._invoke(path, image_body(request), decode)
        return GeneratedImage(data=data, media_type=_media_type(data), seed=seed, api_calls=sent)

    def generate_clip(self, request: ClipRequest) -> GeneratedClip:
        frame = fit_for_svd(request.image)
        buffer = io.BytesIO()
        frame.save(buffer, format="JPEG", quality=90)
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
            asset_id = self._upload_asset(buffer.getvalue(), "image/jpeg")
            body["image"] = f"data:image/jpeg;asset_id,{asset_id}"
            headers = {"NVCF-INPUT-ASSET-REFERENCES": asset_id, "NVCF-FUNCTION-ASSET-IDS": asset_id}

        def decode(answer: dict[str, Any]) -> tuple[bytes, int]:
            _check_finish(str(answer.get("finish_reason", "SUCCESS")), "clip")
            video = _decode_base64(answer.get("video"), "video")
            if b"ftyp" not in video[:64]:
                raise TransientServiceError("the answer's video is not an MP4")
            return video, int(answer.get("seed") or request.seed)

        sent, (video, seed) = self._invoke(SVD_PATH, body, decode, headers)
        return GeneratedClip(data=video, seed=seed, api_calls=sent)

    # -- transport --------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _invoke(
        self,
        path: str,
        body: dict[str, Any],
        decode: Callable[[dict[str, Any]], _Result],
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, _Result]:
        """POST with retries until `decode` accepts the final body; returns (requests sent,
        what `decode` made of it). `decode` raises TransientServiceError for a payload that
        does not decode, which is retried like any other transient failure."""
        url = f"{self.options.api_base}/{path}"
        policy = self.options.retry
        sent = 0
        last_error: TransientServiceError | None = None
        for attempt in range(1, policy.attempts + 1):
            try:
                probing = self._wait_until_key_is_trusted()
            except FatalServiceError as exc:
                raise _with_calls(exc, sent) from None
            self.limiter.acquire()
            sent += 1
            with self._lock:
                self.requests_sent += 1
            try:
                return sent, decode(self._post_and_wait(url, body, headers or {}, probing))
            except TransientServiceError as exc:
                last_error = exc
                if attempt == policy.attempts:
                    break
                delay = policy.delay(attempt, exc.retry_after_s)
                logger.info("%s: %s; retrying in %.1f s", path, exc, delay)
                self._sleep(delay)
            except StoryboardError as exc:
                raise _with_calls(exc, sent) from None
        message = f"{path}: gave up after {sent} attempts ({last_error})"
        raise _with_calls(TransientServiceError(self._scrub(message)), sent)

    def _wait_until_key_is_trusted(self) -> bool:
        """Until the service has once accepted the key, one request at a time goes out.

        Returns True when the caller is that one request (the probe). A refused key so costs
        one request, however many scenes are waiting; once accepted, requests run freely.
        """
        while not self._key_accepted.is_set():
            if self._fatal:
                raise FatalServiceError(self._fatal)
            if self._probe.acquire(blocking=False):
                if self._key_accepted.is_set() or self._fatal:
                    self._probe.release()
                    continue
                return True
            self._key_accepted.wait(0.05)
        if self._fatal:
            raise FatalServiceError(self._fatal)
        return False

    def _post_and_wait(
        self, url: str, body: dict[str, Any], headers: Mapping[str, str], probing: bool = False
    ) -> dict[str, Any]:
        try:
            response = self._http.post(url, json=body, headers={**self._auth(), **headers})
            if response.status_code in (200, 202):
                self._key_accepted.set()
            elif response.status_code in _FATAL_STATUSES:
                self._final_body(response)  # records the refusal, then raises
        except httpx.TimeoutException:
            raise TransientServiceError("the request timed out") from None
        except httpx.TransportError as exc:
            raise TransientServiceError(
                self._scrub(f"connection failed ({type(exc).__name__})")
            ) from None
        finally:
            if probing:
                self._probe.release()
        if response.status_code == 202:
            return self._poll(response)
        return self._final_body(response)

    def _poll(self, accepted: httpx.Response) -> dict[str, Any]:
        request_id = accepted.headers.get("NVCF-REQID")
        if not request_id:
            raise TransientServiceError("a 202 answer came without NVCF-REQID")
        url = f"{self.options.nvcf_base}/pexec/status/{request_id}"
        deadline = time.monotonic() + self.options.poll_deadline_s
        while True:
            if time.monotonic() > deadline:
                raise TransientServiceError(
                    f"no result within {self.options.poll_deadline_s:.0f} s"
                )
            self._sleep(self.options.poll_interval_s)
            try:
                response = self._http.get(url, headers=self._auth())
            except httpx.TimeoutException:
                continue
            except httpx.TransportError as exc:
                raise TransientServiceError(f"polling failed ({type(exc).__name__})") from None
            if response.status_code == 202:
                continue
            if response.status_code == 302:
                location = response.headers.get("Location")
                if not location:
                    raise TransientServiceError("a 302 answer came without Location")
                try:
                    response = self._http.get(location, headers=self._auth())
                except httpx.TransportError as exc:
                    raise TransientServiceError(
                        f"fetching the result failed ({type(exc).__name__})"
                    ) from None
            return self._final_body(response)

    def _final_body(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except (ValueError, json.JSONDecodeError):
                raise TransientServiceError("the 200 answer is not valid JSON") from None
            if not isinstance(body, dict):
                raise TransientServiceError("the 200 answer is not a JSON object")
            return body
        detail = self._scrub(_problem_detail(response))
        if status in _FATAL_STATUSES:
            reason = {
                401: "the API key was refused (malformed or missing)",
                402: "the account has no credits left",
                403: "the API key was refused (invalid or revoked)",
            }[status]
            message = f"NVIDIA API: {reason}: HTTP {status} {detail}"
            with self._lock:
                self._fatal = self._fatal or message
            raise FatalServiceError(message)
        if status == 429 or status >= 500:
            raise TransientServiceError(
                f"HTTP {status} {detail}", retry_after_s=_retry_after(response)
            )
        if status in _PERMANENT_STATUSES or 400 <= status < 500:
            raise GenerationError(f"NVIDIA API rejected the request: HTTP {status} {detail}")
        raise TransientServiceError(f"unexpected HTTP {status}")

    def _upload_asset(self, data: bytes, content_type: str) -> str:
        description = "storyboard-svd-input"
        policy = self.options.retry
        for attempt in range(1, policy.attempts + 1):
            try:
                created = self._http.post(
                    f"{self.options.nvcf_base}/assets",
                    json={"contentType": content_type, "description": description},
                    headers=self._auth(),
                )
                answer = self._final_body(created)
                asset_id, upload_url = answer.get("assetId"), answer.get("uploadUrl")
                if not isinstance(asset_id, str) or not isinstance(upload_url, str):
                    raise TransientServiceError("the asset answer had no assetId or uploadUrl")
                uploaded = self._http.put(
                    upload_url,
                    content=data,
                    headers={
                        "Content-Type": content_type,
                        "x-amz-meta-nvcf-asset-description": description,
                    },
                )
                if uploaded.status_code >= 300:
                    raise TransientServiceError(
                        f"asset upload answered HTTP {uploaded.status_code}"
                    )
                return asset_id
            except httpx.TransportError as exc:
                error = TransientServiceError(f"asset upload failed ({type(exc).__name__})")
            except TransientServiceError as exc:
                error = exc
            if attempt == policy.attempts:
                raise error
            self._sleep(policy.delay(attempt, error.retry_after_s))
        raise TransientServiceError("asset upload failed")


def _check_finish(reason: str, what: str) -> None:
    if reason == _FILTERED:
        raise ContentFilteredError(f"the {what} was refused by the content filter")
    if reason.upper() != "SUCCESS":
        raise GenerationError(f"the model finished with {reason}")


def _with_calls(error: StoryboardError, calls: int) -> StoryboardError:
    error.api_calls = calls
    return error
