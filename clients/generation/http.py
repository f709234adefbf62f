"""The HTTP layer the hosted backends are composed from: retries, the request budget, polling.

One `ServiceConnection` per backend instance holds one connection pool and serves every scene
task of a process (it is thread-safe). `transport` swaps the network for tests.

Failure policy, in one place:
- Safe to send again, with exponential backoff and full jitter (honouring `Retry-After`), up
  to `max_attempts`, then TransientServiceError: 429, 5xx, a refused or failed connection, a
  request not fully sent, and a 200 whose payload does not decode.
- A request that was sent but whose answer was lost (a read timeout, a connection dropped
  while waiting) may have started a paid job: OutcomeUnknownError. A dropped connection is sent
  again while the run's budget of re-sends lasts (`generation.resend_unknown_outcomes`, each
  counted in `RequestCount.resent` and run.json's `possibly_paid_twice`); a read timeout never
  is (the job may still be running). The gateway is asked to answer `202` early
  (`NVCF-POLL-SECONDS`, half the read timeout), so a long job is polled by its request id
  instead of holding the POST open. Polls are safe to repeat; a job whose result cannot be
  fetched also ends in OutcomeUnknownError.
- 401, 402 and 403 raise FatalServiceError, and every later call on the same connection
  raises it at once without sending anything: a refused key stops the run after one request
  (and `nvidia.check_key_accepted` usually finds it before the run starts, paying nothing).
- 404 on a model's endpoint raises ModelUnavailableError (retired, or not for this account);
  later calls for that model raise it without sending anything.
- Other 4xx answers raise GenerationError for that scene.

Every request is counted (`RequestCount`), polls and asset transfers included; every request
to the service draws from the budget. Every message raised here is scrubbed of the API key.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from clients.generation.answers import POLL_HEADER, final_body, poll_seconds, presigned
from clients.generation.ratelimit import RequestBudget, ResendBudget
from clients.stopping import raise_if_stopping, sleep_unless_stopping
from configs.settings import GenerationSettings
from domain.errors import (
    FatalServiceError,
    GenerationError,
    ModelUnavailableError,
    OutcomeUnknownError,
    StoryboardError,
    TransientServiceError,
)

DEFAULT_NVCF_BASE = "https://api.nvcf.nvidia.com/v2/nvcf"
_SAFE_TO_RESEND = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)
_ANSWER_LOST = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)

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
    """The least time between two polls of one job."""
    paid_jobs: bool = True
    """A sent request whose answer was lost is not sent again (False: a self-hosted NIM)."""
    resend_unknown_outcomes: int = 0
    """How many such requests a run sends again all the same (each may be paid twice)."""

    @property
    def poll_seconds(self) -> int:
        return poll_seconds(self.timeout_s)


def connection_options(
    settings: GenerationSettings, api_base: str, paid_jobs: bool = True
) -> ConnectionOptions:
    """Timeouts and retries from the settings; NVCF's address from NVCF_API_BASE."""
    return ConnectionOptions(
        api_base=api_base.rstrip("/"),
        nvcf_base=os.environ.get("NVCF_API_BASE", DEFAULT_NVCF_BASE).rstrip("/"),
        timeout_s=settings.request_timeout_s,
        poll_deadline_s=settings.poll_deadline_s,
        retry=RetryPolicy(attempts=settings.max_attempts),
        paid_jobs=paid_jobs,
        resend_unknown_outcomes=settings.resend_unknown_outcomes,
    )


class RequestCount:
    """The requests one call sent, of every kind; read into `api_calls`. `resent`: those sent
    again after their answer was lost."""

    def __init__(self) -> None:
        self.sent = 0
        self.resent = 0


def with_calls(error: StoryboardError, calls: RequestCount | int) -> StoryboardError:
    error.api_calls = calls.sent if isinstance(calls, RequestCount) else calls
    error.resent = calls.resent if isinstance(calls, RequestCount) else 0
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
        sleep: Callable[[float], None] = sleep_unless_stopping,
    ) -> None:
        self.service = service
        self.options = options
        self.limiter = limiter
        self._key = api_key
        self.sleep = sleep
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(options.timeout_s, connect=15.0),
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._fatal: str | None = None
        self._unavailable: dict[str, str] = {}
        self._key_accepted = threading.Event()
        self._probe = threading.Lock()
        self._lock = threading.Lock()
        self.resends = ResendBudget(options.resend_unknown_outcomes)

    def close(self) -> None:
        self._http.close()

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def send(
        self, calls: RequestCount, method: str, url: str, budgeted: bool = True, **kw: Any
    ) -> httpx.Response:
        """One request, counted (and, to the service, drawn from the budget)."""
        raise_if_stopping()
        if budgeted:
            self.limiter.acquire()
        calls.sent += 1
        return self._http.request(method, url, **kw)

    def invoke(
        self,
        path: str,
        body: dict[str, Any],
        decode: Callable[[dict[str, Any]], _Result],
        headers: Mapping[str, str] | None = None,
        calls: RequestCount | None = None,
    ) -> tuple[int, _Result]:
        """POST until `decode` accepts the final answer; returns (requests sent, what `decode`
        made of it). `decode` raises TransientServiceError for a payload that does not decode,
        which is retried like any other transient failure."""
        calls = calls or RequestCount()
        policy = self.options.retry
        last_error: TransientServiceError | None = None
        attempt = 0
        while attempt < policy.attempts:
            attempt += 1
            try:
                self._refuse_known_failures(path)
                answer = self._post_and_wait(path, body, headers or {}, calls)
                return calls.sent, decode(answer)
            except TransientServiceError as exc:
                last_error = exc
                if attempt == policy.attempts:
                    break
                delay = policy.delay(attempt, exc.retry_after_s)
                logger.info("%s: %s; retrying in %.1f s", path, exc, delay)
                self.sleep(delay)
            except OutcomeUnknownError as exc:
                self._resend_or_raise(path, exc, calls)
                attempt -= 1  # a re-send is not a transient failure's retry
            except StoryboardError as exc:
                raise with_calls(exc, calls) from None
        message = f"{path}: gave up after {calls.sent} requests ({last_error})"
        raise with_calls(TransientServiceError(self.scrub(message)), calls)

    def _resend_or_raise(self, path: str, lost: OutcomeUnknownError, calls: RequestCount) -> None:
        """Spend one of the run's re-sends on a request whose answer was lost, or raise."""
        raise_if_stopping()
        if not lost.resendable:
            message = f"{lost}; not sent again (a re-run may pay for it again)"
            raise with_calls(OutcomeUnknownError(message), calls) from None
        if not self.resends.take():
            spent = (
                f"the run's {self.resends.allowed} re-sends of lost answers are spent"
                if self.resends.allowed
                else "generation.resend_unknown_outcomes is 0"
            )
            message = f"{lost}; not sent again, {spent} (a re-run may pay for it again)"
            raise with_calls(OutcomeUnknownError(message), calls) from None
        calls.resent += 1
        logger.warning(
            "%s: %s; sending it again (re-send %d of %d this run: it may be paid twice)",
            path,
            lost,
            self.resends.used,
            self.resends.allowed,
        )

    def _refuse_known_failures(self, path: str) -> None:
        with self._lock:
            unavailable = self._unavailable.get(path)
        if unavailable:
            raise ModelUnavailableError(unavailable, path)
        if self._fatal:
            raise FatalServiceError(self._fatal)

    def _wait_until_key_is_trusted(self, path: str) -> bool:
        """Until the service has once accepted the key, one request at a time goes out.

        Returns True when the caller is that one request (the probe). A refused key so costs
        one request, however many scenes are waiting; once accepted, requests run freely.
        """
        while not self._key_accepted.is_set():
            self._refuse_known_failures(path)
            if self._probe.acquire(blocking=False):
                if self._key_accepted.is_set():
                    self._probe.release()
                    continue
                return True
            self._key_accepted.wait(0.05)
        self._refuse_known_failures(path)
        return False

    def _post_and_wait(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str], calls: RequestCount
    ) -> dict[str, Any]:
        probing = self._wait_until_key_is_trusted(path)
        try:
            response = self._post(path, body, headers, calls)
        finally:
            if probing:
                self._probe.release()
        if response.status_code == 202:
            return self._poll(response, calls)
        if response.status_code == 302:
            request_id = response.headers.get("NVCF-REQID", "(no request id)")
            return self.final_body(self._follow(response, request_id, calls), "")
        return self.final_body(response, path)

    def _post(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str], calls: RequestCount
    ) -> httpx.Response:
        url = f"{self.options.api_base}/{path}"
        sent_headers = {**self.auth(), **headers}
        if self.options.paid_jobs:
            sent_headers[POLL_HEADER] = str(self.options.poll_seconds)
        try:
            response = self.send(calls, "POST", url, json=body, headers=sent_headers)
        except _SAFE_TO_RESEND as exc:
            raise TransientServiceError(
                f"the request was not sent ({type(exc).__name__})"
            ) from None
        except _ANSWER_LOST as exc:
            if not self.options.paid_jobs:
                raise TransientServiceError(f"no answer ({type(exc).__name__})") from None
            dropped = not isinstance(exc, httpx.ReadTimeout)  # a slow job is not sent twice
            message = _lost(exc, self.options.timeout_s)
            raise OutcomeUnknownError(message, resendable=dropped) from None
        except httpx.TransportError as exc:
            raise TransientServiceError(
                self.scrub(f"connection failed ({type(exc).__name__})")
            ) from None
        if response.status_code in (200, 202):
            self._key_accepted.set()
        elif response.status_code in (401, 402, 403, 404):
            self.final_body(response, path)  # records the refusal, then raises
        return response

    def _poll(self, accepted: httpx.Response, calls: RequestCount) -> dict[str, Any]:
        request_id = accepted.headers.get("NVCF-REQID")
        if not request_id:
            raise OutcomeUnknownError("a 202 answer came without NVCF-REQID: outcome unknown")
        url = f"{self.options.nvcf_base}/pexec/status/{request_id}"
        deadline = time.monotonic() + self.options.poll_deadline_s
        failures = 0
        while time.monotonic() < deadline:
            began = time.monotonic()
            try:
                response = self.send(calls, "GET", url, headers=self._poll_headers())
            except httpx.TimeoutException:
                continue
            except httpx.TransportError as exc:
                failures += 1
                self._give_up_polling(request_id, failures, type(exc).__name__)
                self.sleep(self.options.retry.delay(failures, None))
                continue
            status = response.status_code
            if status == 202:
                self.sleep(max(0.0, self.options.poll_interval_s - (time.monotonic() - began)))
                continue
            if status == 429 or status >= 500:
                failures += 1
                self._give_up_polling(request_id, failures, f"HTTP {status}")
                self.sleep(self.options.retry.delay(failures, None))
                continue
            if status == 302:
                response = self._follow(response, request_id, calls)
            return self.final_body(response, "")
        raise OutcomeUnknownError(
            f"request {request_id} gave no result within {self.options.poll_deadline_s:.0f} s"
            " (outcome unknown)"
        )

    def _poll_headers(self) -> dict[str, str]:
        return {**self.auth(), POLL_HEADER: str(self.options.poll_seconds)}

    def _give_up_polling(self, request_id: str, failures: int, why: str) -> None:
        if failures >= self.options.retry.attempts:
            raise OutcomeUnknownError(
                f"request {request_id} was accepted but its result could not be fetched ({why})"
            )

    def _follow(
        self, redirect: httpx.Response, request_id: str, calls: RequestCount
    ) -> httpx.Response:
        """The result behind a 302: a presigned storage URL is fetched without our key."""
        location = redirect.headers.get("Location")
        if not location:
            raise OutcomeUnknownError(f"request {request_id}: a 302 answer came without Location")
        location = str(redirect.url.join(location))
        headers = {} if presigned(location, self.options.nvcf_base) else self.auth()
        for attempt in range(1, self.options.retry.attempts + 1):
            try:
                return self.send(calls, "GET", location, budgeted=False, headers=headers)
            except httpx.TransportError as exc:
                why = type(exc).__name__
            if attempt < self.options.retry.attempts:
                self.sleep(self.options.retry.delay(attempt, None))
        raise OutcomeUnknownError(f"request {request_id}: fetching its result failed ({why})")

    def final_body(self, response: httpx.Response, path: str) -> dict[str, Any]:
        """The JSON answer of a final response, or the error its status means."""
        try:
            return final_body(response, self.service, self.scrub)
        except ModelUnavailableError as exc:
            if not path:
                raise GenerationError(str(exc)) from None
            message = f"{exc} (model {path})"
            with self._lock:
                self._unavailable.setdefault(path, message)
            raise ModelUnavailableError(message, path) from None
        except FatalServiceError as exc:
            with self._lock:
                self._fatal = self._fatal or str(exc)
            raise


def _lost(exc: Exception, timeout_s: float) -> str:
    if isinstance(exc, httpx.ReadTimeout):
        what = f"no answer within {timeout_s:.0f} s of sending"
    else:
        what = f"the connection dropped after sending ({type(exc).__name__})"
    return f"outcome unknown: {what}"
