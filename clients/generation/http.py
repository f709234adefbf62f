"""The HTTP layer the hosted backends are composed from: retries, the request budget, polling.

One `ServiceConnection` per backend instance holds one connection pool and serves every scene
task of a process (it is thread-safe). `transport` swaps the network for tests.

Failure policy, in one place:
- 429, 5xx, timeouts, dropped connections and a 200 whose payload does not decode are
  retried with exponential backoff and full jitter, honouring `Retry-After`; when the
  attempts run out they raise TransientServiceError.
- 401, 402 and 403 raise FatalServiceError, and every later call on the same connection
  raises it at once without sending anything: a refused key stops the run after one request.
- Other 4xx answers raise GenerationError for that scene.

Every message raised here is scrubbed of the API key.
"""

from __future__ import annotations

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

from clients.generation.ratelimit import RequestBudget
from configs.settings import GenerationSettings
from domain.errors import (
    FatalServiceError,
    GenerationError,
    StoryboardError,
    TransientServiceError,
)

DEFAULT_NVCF_BASE = "https://api.nvcf.nvidia.com/v2/nvcf"
_FATAL_REASONS = {
    401: "the API key was refused (malformed or missing)",
    402: "the account has no credits left",
    403: "the API key was refused (invalid or revoked)",
}

logger = logging.getLogger(__name__)
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(max(0.0, retry_after_s), self.max_delay_s * 4)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class ConnectionOptions:
    """Where a service lives and how long to wait for it (from `GenerationSettings`)."""

    api_base: str
    nvcf_base: str
    timeout_s: float
    poll_deadline_s: float
    retry: RetryPolicy
    poll_interval_s: float = 1.0


def connection_options(settings: GenerationSettings, api_base: str) -> ConnectionOptions:
    """Timeouts and retries from the settings; NVCF's address from NVCF_API_BASE."""
    return ConnectionOptions(
        api_base=api_base.rstrip("/"),
        nvcf_base=os.environ.get("NVCF_API_BASE", DEFAULT_NVCF_BASE).rstrip("/"),
        timeout_s=settings.request_timeout_s,
        poll_deadline_s=settings.poll_deadline_s,
        retry=RetryPolicy(attempts=settings.max_attempts),
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


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


def with_calls(error: StoryboardError, calls: int) -> StoryboardError:
    error.api_calls = calls
    return error


class ServiceConnection:
    """POSTs that are retried, budgeted and polled to a final JSON answer."""

    def __init__(
        self,
        service: str,
        options: ConnectionOptions,
        limiter: RequestBudget,
        api_key: str = "",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service = service
        self.options = options
        self.limiter = limiter
        self._key = api_key
        self._sleep = sleep
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(options.timeout_s, connect=15.0),
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._fatal: str | None = None
        self._key_accepted = threading.Event()
        self._probe = threading.Lock()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def invoke(
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
                raise with_calls(exc, sent) from None
            self.limiter.acquire()
            sent += 1
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
                raise with_calls(exc, sent) from None
        message = f"{path}: gave up after {sent} attempts ({last_error})"
        raise with_calls(TransientServiceError(self.scrub(message)), sent)

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
            elif response.status_code in _FATAL_REASONS:
                self.final_body(response)  # records the refusal, then raises
        except httpx.TimeoutException:
            raise TransientServiceError("the request timed out") from None
        except httpx.TransportError as exc:
            raise TransientServiceError(
                self.scrub(f"connection failed ({type(exc).__name__})")
            ) from None
        finally:
            if probing:
                self._probe.release()
        if response.status_code == 202:
            return self._poll(response)
        return self.final_body(response)

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
                response = self._follow(response)
            return self.final_body(response)

    def _follow(self, redirect: httpx.Response) -> httpx.Response:
        location = redirect.headers.get("Location")
        if not location:
            raise TransientServiceError("a 302 answer came without Location")
        try:
            return self._http.get(location, headers=self._auth())
        except httpx.TransportError as exc:
            raise TransientServiceError(
                f"fetching the result failed ({type(exc).__name__})"
            ) from None

    def final_body(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except (ValueError, json.JSONDecodeError):
                raise TransientServiceError("the 200 answer is not valid JSON") from None
            if not isinstance(body, dict):
                raise TransientServiceError("the 200 answer is not a JSON object")
            return body
        detail = self.scrub(problem_detail(response))
        if status in _FATAL_REASONS:
            message = f"{self.service}: {_FATAL_REASONS[status]}: HTTP {status} {detail}"
            with self._lock:
                self._fatal = self._fatal or message
            raise FatalServiceError(message)
        if status == 429 or status >= 500:
            raise TransientServiceError(
                f"HTTP {status} {detail}", retry_after_s=_retry_after(response)
            )
        if 400 <= status < 500:
            raise GenerationError(f"{self.service} rejected the request: HTTP {status} {detail}")
        raise TransientServiceError(f"unexpected HTTP {status}")

    def upload_asset(self, data: bytes, content_type: str) -> str:
        """Upload `data` as an NVCF asset (retried like a request); returns its id."""
        policy = self.options.retry
        for attempt in range(1, policy.attempts + 1):
            try:
                return self._upload_once(data, content_type)
            except httpx.TransportError as exc:
                error = TransientServiceError(f"asset upload failed ({type(exc).__name__})")
            except TransientServiceError as exc:
                error = exc
            if attempt == policy.attempts:
                raise error
            self._sleep(policy.delay(attempt, error.retry_after_s))
        raise TransientServiceError("asset upload failed")

    def _upload_once(self, data: bytes, content_type: str) -> str:
        description = "storyboard-svd-input"
        created = self._http.post(
            f"{self.options.nvcf_base}/assets",
            json={"contentType": content_type, "description": description},
            headers=self._auth(),
        )
        answer = self.final_body(created)
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
            raise TransientServiceError(f"asset upload answered HTTP {uploaded.status_code}")
        return asset_id
