"""The request and answer shapes NVIDIA's hosted models and self-hosted NIMs share.

The contract is `shared/reference/nvidia-genai-api.md`.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from clients.generation.schemas import FLUX_SIDES
from clients.media.drawing import cover
from domain.errors import ContentFilteredError, GenerationError, TransientServiceError
from domain.media import SVD_HEIGHT, SVD_WIDTH

FILTERED = "CONTENT_FILTERED"


def fit_for_svd(data: bytes) -> Image.Image:
    """Scale and centre-crop an image to SVD's 1024x576."""
    return cover(Image.open(io.BytesIO(data)).convert("RGB"), SVD_WIDTH, SVD_HEIGHT)


def aspect_ratio(width: int, height: int) -> str:
    choices = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "5:4": 1.25, "4:5": 0.8}
    choices |= {"3:2": 1.5, "2:3": 2 / 3}
    target = width / height
    return min(choices, key=lambda name: abs(choices[name] - target))


def flux_size(width: int, height: int) -> tuple[int, int]:
    """The largest size on FLUX's grid (768..1344, step 64) with about the wanted shape."""
    sizes = [(w, h) for w in FLUX_SIDES for h in FLUX_SIDES]
    target = width / height
    return min(sizes, key=lambda size: (abs(size[0] / size[1] - target), -size[0] * size[1]))


def decode_base64(value: object, what: str) -> bytes:
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
        data = b"" if reason == FILTERED else decode_base64(first.get("base64"), "image")
        return data, reason, first.get("seed")
    reason = str(body.get("finish_reason", "SUCCESS"))
    data = b"" if reason == FILTERED else decode_base64(body.get("image"), "image")
    return data, reason, body.get("seed")


def image_media_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise TransientServiceError("the answer's image is neither PNG, JPEG nor WebP")


def check_finish(reason: str, what: str) -> None:
    if reason == FILTERED:
        raise ContentFilteredError(f"the {what} was refused by the content filter")
    if reason.upper() != "SUCCESS":
        raise GenerationError(f"the model finished with {reason}")


def image_decoder(seed: int) -> Callable[[dict[str, Any]], tuple[bytes, int]]:
    """A `decode` for `ServiceConnection.invoke`: the image bytes and seed of an answer."""

    def decode(body: dict[str, Any]) -> tuple[bytes, int]:
        data, reason, answered_seed = parse_image_answer(body)
        check_finish(reason, "prompt")
        image_media_type(data)
        return data, int(answered_seed or seed)

    return decode
