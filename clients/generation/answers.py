"""What a hosted service's answer means: a JSON body (or a zip holding one), or an error.

`final_body` maps a final HTTP status to the error hierarchy in `domain/errors.py`; the
retry decisions built on it are drawn in `clients/generation/http.py`.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from domain.errors import (
    FatalServiceError,
    GenerationError,
    ModelUnavailableError,
    TransientServiceError,
)

POLL_HEADER = "NVCF-POLL-SECONDS"
MAX_POLL_SECONDS = 300
FATAL_REASONS = {
    401: "the API key was refused (malformed or missing)",
    402: "the account has no credits left",
    403: "the API key was refused (invalid or revoked)",
}
_PRESIGNED_MARKERS = ("x-amz-signature=", "x-amz-credential=", "signature=", "sig=")


def poll_seconds(timeout_s: float) -> int:
    """How long the gateway may hold a request before answering 202: half the read timeout,
    so that its answer always arrives before the client gives up waiting."""
    return max(1, min(MAX_POLL_SECONDS, int(timeout_s / 2)))


def presigned(url: str, service_base: str) -> bool:
    """Whether `url` is a storage URL that authorises itself (it must not carry our key):
    signed in its query, or on another host than the service."""
    parts = urlsplit(url)
    if any(marker in parts.query.lower() for marker in _PRESIGNED_MARKERS):
        return True
    return parts.netloc != urlsplit(service_base).netloc


def problem_detail(response: httpx.Response) -> str:
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


def json_answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 200 answer, unpacked from a zip archive when it comes as one."""
    content = response.content
    try:
        if content.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = [name for name in archive.namelist() if not name.endswith("/")]
                content = archive.read(names[0]) if names else b""
        body = json.loads(content)
    except (ValueError, zipfile.BadZipFile, KeyError):
        raise TransientServiceError("the 200 answer is neither JSON nor a zip of JSON") from None
    if not isinstance(body, dict):
        raise TransientServiceError("the 200 answer is not a JSON object")
    return body


def final_body(
    response: httpx.Response, service: str, scrub: Callable[[str], str]
) -> dict[str, Any]:
    """The answer of a final response, or the error its status means (scrubbed by `scrub`)."""
    status = response.status_code
    if status == 200:
        return json_answer(response)
    detail = scrub(problem_detail(response))
    if status in FATAL_REASONS:
        raise FatalServiceError(f"{service}: {FATAL_REASONS[status]}: HTTP {status} {detail}")
    if status == 404:
        raise ModelUnavailableError(f"{service}: HTTP 404 {detail}")
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        raise TransientServiceError(f"HTTP {status} {detail}", retry_after_s=_seconds(retry_after))
    if 400 <= status < 500:
        raise GenerationError(f"{service} rejected the request: HTTP {status} {detail}")
    raise TransientServiceError(f"unexpected HTTP {status}")


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
