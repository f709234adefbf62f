"""What the fake NVIDIA API answers with: generated media, problem bodies, the storage bucket's
XML errors and zipped results."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import json
import random
import uuid
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlencode
from xml.sax.saxutils import escape

from PIL import Image

from clients.media.video import CLIP_ENCODING, encode_frames, push_in_frames
from testkit.fakes.nvidia_schemas import SD3, SVD

ACCOUNT_ID = "kq8c1yz3m2vt9lr0ab7xw4nh6pj5sd1fe0gk"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided."
)
SD3_SIZES = {"16:9": (1344, 768), "9:16": (768, 1344)}


def answer(
    model: str, body: dict[str, Any], rng: random.Random, filter_word: str
) -> dict[str, Any]:
    """The 200 body for a valid `body` sent to `model`."""
    seed = int(body.get("seed") or rng.randint(1, 2**31))
    if model == SVD:
        return {"video": sample_video_b64(), "finish_reason": "SUCCESS", "seed": seed}
    prompt = body.get("prompt") or body["text_prompts"][0]["text"]
    filtered = filter_word in prompt.lower()
    size = (int(body.get("width", 1024)), int(body.get("height", 1024)))
    if model == SD3:
        size = SD3_SIZES.get(body.get("aspect_ratio", "1:1"), (1024, 1024))
    image = "" if filtered else base64.b64encode(sample_image(prompt, seed, size)).decode()
    reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
    if model == SD3:
        return {"image": image, "finish_reason": reason, "seed": seed}
    return {"artifacts": [{"base64": image, "finishReason": reason, "seed": seed}]}


def sample_image(prompt: str, seed: int, size: tuple[int, int]) -> bytes:
    rng = random.Random(f"{prompt}|{seed}")
    colour = tuple(rng.randint(40, 220) for _ in range(3))
    image = Image.new("RGB", size, colour)  # type: ignore[arg-type]
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


@functools.cache
def sample_video_b64() -> str:
    """SVD's clip shape: 1024x576, 25 frames at 6 fps (made once per process)."""
    frame = Image.new("RGB", (1024, 576), (90, 120, 160))
    video = encode_frames(push_in_frames(frame, 1, 25, 1024, 576), 6, CLIP_ENCODING)
    return base64.b64encode(video).decode()


def problem(status: int, title: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "status": status, "title": title}
    if detail is not None:
        body["detail"] = detail
    return body


def function_id(model: str) -> str:
    """The NVCF function behind a model path (stable per path)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"nvcf:{model}"))


def retired(model: str) -> dict[str, Any]:
    detail = f"Function '{function_id(model)}': Not found for account '{ACCOUNT_ID}'"
    return problem(404, "Not Found", detail)


def s3_error(code: str, message: str, **extra: str) -> bytes:
    """An S3-style XML error document."""
    fields = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{fields}"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


def zipped(request_id: str, body: dict[str, Any]) -> bytes:
    """A zip archive holding `{request_id}.response`, the JSON answer."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{request_id}.response", json.dumps(body))
    return buffer.getvalue()


def presign(base_url: str, path: str, secret: bytes) -> str:
    """`base_url + path` with an S3-style presigned query (signed over the path)."""
    query = urlencode(
        {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": "ASIAFAKEFAKEFAKE/20260801/us-west-2/s3/aws4_request",
            "X-Amz-Date": "20260801T000000Z",
            "X-Amz-Expires": "3600",
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": _signature(path, secret),
        }
    )
    return f"{base_url}{path}?{query}"


def signed(path: str, query: str, secret: bytes) -> bool:
    """Whether `query` carries this server's signature for `path`."""
    fields = parse_qs(query)
    algorithm = fields.get("X-Amz-Algorithm", [""])[0]
    signature = fields.get("X-Amz-Signature", [""])[0]
    return algorithm == "AWS4-HMAC-SHA256" and hmac.compare_digest(
        signature, _signature(path, secret)
    )


def _signature(path: str, secret: bytes) -> str:
    return hmac.new(secret, path.encode(), hashlib.sha256).hexdigest()
