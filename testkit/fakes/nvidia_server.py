"""A strict stand-in for NVIDIA's hosted generative API, on a real loopback HTTP server.

It follows `shared/reference/nvidia-genai-api.md`:
- every request body is checked against the model's schema, written from the contract
  (`nvidia_schemas.py`): an unknown field, a wrong type or a value out of range is a 422
  `{"detail": [{"type", "loc", "msg", "input", "ctx"}]}`; a body over 5 MB is a 413;
- 401 for a token that is not `nvapi-...`, 403 for a wrong key, a rate limit of its own;
- a valid POST that no fault answers first becomes a paid JOB, which takes
  `Faults.job_seconds[model]`; the answer waits for it as NVCF does: up to the request's
  `NVCF-POLL-SECONDS` (then `202` + `NVCF-REQID`, to be polled on
  `/v2/nvcf/pexec/status/{id}`), or, without that header, as long as the job takes;
- finished results come as `200`, or as a `302` to a presigned storage URL on this server
  that refuses an Authorization header (S3's "Only one auth mechanism allowed"), optionally
  zipped;
- NVCF assets: create, presigned `PUT` upload (no Authorization), `DELETE`;
- a self-hosted NIM (`/v1/infer`, `/v1/health/*`) on the same server.

Everything that breaks the contract is recorded in `stats.violations`.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from testkit.fakes import nvidia_answers as answers
from testkit.fakes.nvidia_schemas import (
    ASSET_SCHEMA,
    FLUX_DEV,
    IMAGE_MODELS,
    MODELS,
    NIM_SCHEMA,
    SAMPLERS,
    SVD,
    Assets,
    Error,
    validate,
)

__all__ = ["FILTER_WORD", "IMAGE_MODELS", "SAMPLERS", "SVD", "VALID_KEY", "FakeNvidia", "Faults"]

VALID_KEY = "nvapi-test-0123456789abcdef"
FILTER_WORD = "forbidden"
FAULT_KINDS = ("429", "500", "502", "503", "drop")
MAX_BODY = 5_000_000
"""Bytes a request body may have (the contract's 5 MB, read strictly)."""


@dataclass
class Faults:
    transient_rate: float = 0.0
    """Share of valid generation POSTs answered with a fault from `fault_kinds`, before any
    job is accepted (no job, nothing paid; except a drop with `drop_after_accept`)."""
    async_rate: float = 0.0
    """Share of accepted jobs answered `202` at once; such a job also needs
    `polls_before_done` polls answered 202 before a poll gets the result."""
    latency_s: float = 0.0
    """Seconds every valid generation POST waits before it is answered or becomes a job."""
    polls_before_done: int = 2
    redirect_results: bool = False
    """A finished job's result is a `302` to a presigned storage URL instead of a `200`."""
    retry_after_s: float | None = None
    """`Retry-After` sent with injected 429/5xx faults."""
    rate_limit_per_minute: int | None = None
    """Authenticated requests (generation, polls, asset create/delete) per sliding minute."""
    seed: int = 7
    job_seconds: dict[str, float] = field(default_factory=dict)
    """How long a job takes, by model path (e.g. {SVD: 3.0}); 0 when absent."""
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    """What `transient_rate` picks from (evenly): "429", "500", "502", "503", "drop"."""
    drop_after_accept: bool = False
    """False: a "drop" closes the connection before any job exists. True: the job is
    accepted (paid, counted) and then the connection is closed without an answer."""
    zip_results: bool = False
    """A redirected result's body is a zip holding `{reqid}.response` (else the JSON)."""
    retired_models: tuple[str, ...] = ()
    """Model paths answered 404 "Function '...': Not found for account '...'" (no job)."""

    def __post_init__(self) -> None:
        unknown = set(self.fault_kinds) - set(FAULT_KINDS)
        if unknown or not self.fault_kinds:
            raise ValueError(f"fault_kinds must be some of {FAULT_KINDS}, not {unknown}")
        if set(self.job_seconds) - set(MODELS):
            raise ValueError(f"job_seconds takes model paths, one of {MODELS}")


@dataclass
class Stats:
    generation_requests: int = 0
    """POSTs to `/v1/genai/...` and the NIM's `/v1/infer`, whatever their answer."""
    total_requests: int = 0
    """Every request received except NIM health checks and key checks: generation POSTs,
    polls, storage GETs, asset create/PUT/DELETE, NIM infers, unknown routes."""
    key_checks: int = 0
    """Polls of a request id that was never issued (how a client learns whether its key is
    accepted without paying): 401/403 for a refused key, else 404."""
    requests_by_kind: Counter[str] = field(default_factory=Counter)
    """total_requests split: generate, poll, result, asset_create, asset_upload,
    asset_delete, nim, unknown."""
    by_path: Counter[str] = field(default_factory=Counter)
    """Generation POSTs by model path ("nim" for `/v1/infer`)."""
    statuses: Counter[int] = field(default_factory=Counter)
    injected_faults: int = 0
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    jobs: int = 0
    """Jobs accepted (paid) on the hosted API."""
    duplicate_jobs: int = 0
    """Jobs whose model path and body equal an earlier job's in this server's life."""
    job_bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(model path, body) of every job, in order."""
    polls: int = 0
    """GETs of `/v2/nvcf/pexec/status/{id}`, whatever their answer."""
    result_fetches: int = 0
    """GETs of presigned result URLs, whatever their answer."""
    assets: int = 0
    """Assets created."""
    asset_uploads: int = 0
    assets_deleted: int = 0
    violations: list[str] = field(default_factory=list)
    authorization_headers: list[str] = field(default_factory=list)
    poll_seconds: list[float | None] = field(default_factory=list)
    """NVCF-POLL-SECONDS of each generation POST and poll (None: not sent)."""
    request_times: list[float] = field(default_factory=list)
    """When each generation request arrived (time.monotonic())."""


@dataclass
class Job:
    id: str
    model: str
    answer: dict[str, Any]
    created: float
    seconds: float
    polls_needed: int = 0
    polls: int = 0

    def remaining(self) -> float:
        return max(0.0, self.created + self.seconds - time.monotonic())

    def finished(self) -> bool:
        return self.remaining() == 0 and self.polls >= self.polls_needed

    def percent(self) -> int:
        if not self.seconds:
            return 0
        return min(99, int(100 * (time.monotonic() - self.created) / self.seconds))


Handler = BaseHTTPRequestHandler


class FakeNvidia:
    """Start with `with FakeNvidia() as fake:`; point the client at `fake.api_base` and
    `fake.nvcf_base`."""

    def __init__(
        self,
        faults: Faults | None = None,
        valid_key: str = VALID_KEY,
        filter_word: str = FILTER_WORD,
    ) -> None:
        self.faults = faults or Faults()
        self.valid_key = valid_key
        self.filter_word = filter_word.lower()
        self.nim_loading = False
        self.stats = Stats()
        self._retired = set(self.faults.retired_models)
        self._random = random.Random(self.faults.seed)
        self._secret = os.urandom(16)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._jobs: dict[str, Job] = {}
        self._job_keys: set[tuple[str, str]] = set()
        self._assets: dict[str, dict[str, Any]] = {}
        self._recent: deque[float] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1/genai"

    @property
    def nvcf_base(self) -> str:
        return f"{self.base_url}/v2/nvcf"

    def retire(self, model: str) -> None:
        """From now on, POSTs to `model` are answered 404 as for a withdrawn function."""
        with self._lock:
            self._retired.add(model)

    def jobs_running(self) -> int:
        """Accepted jobs whose time is not yet up."""
        with self._lock:
            return sum(1 for job in self._jobs.values() if job.remaining() > 0)

    def __enter__(self) -> FakeNvidia:
        answers.sample_video_b64()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # -- routing -----------------------------------------------------------------------------

    def _handler_class(self) -> type[Handler]:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

            def do_PUT(self) -> None:
                fake._dispatch(self, "PUT")

            def do_DELETE(self) -> None:
                fake._dispatch(self, "DELETE")

        return RequestHandler

    _ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
        ("POST", re.compile(r"/v1/genai/(.+)"), "_generate"),
        ("GET", re.compile(r"/v2/nvcf/pexec/status/([^/]+)"), "_status"),
        ("GET", re.compile(r"/storage/results/([^/]+)"), "_result"),
        ("POST", re.compile(r"/v2/nvcf/assets()"), "_create_asset"),
        ("PUT", re.compile(r"/storage/uploads/([^/]+)"), "_upload"),
        ("DELETE", re.compile(r"/v2/nvcf/assets/([^/]+)"), "_delete_asset"),
        ("POST", re.compile(r"/v1/infer()"), "_nim_infer"),
        ("GET", re.compile(r"/v1/health/(ready|live)"), "_health"),
    )

    def _dispatch(self, handler: Handler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = urlsplit(handler.path).path
        try:
            for verb, pattern, name in self._ROUTES:
                if verb == method and (match := pattern.fullmatch(path)):
                    getattr(self, name)(handler, match.group(1), raw)
                    return
            self._count("unknown")
            self._violation(f"unknown route {method} {path}")
            self._send(handler, 404, answers.problem(404, "Not Found", path))
        except OSError:  # the client went away (timed out, or a drop)
            return

    def _count(self, kind: str) -> None:
        with self._lock:
            self.stats.total_requests += 1
            self.stats.requests_by_kind[kind] += 1

    def _violation(self, message: str) -> None:
        with self._lock:
            self.stats.violations.append(message)

    # -- generation --------------------------------------------------------------------------

    def _generate(self, handler: Handler, model: str, raw: bytes) -> None:
        self._count("generate")
        with self._lock:
            self.stats.generation_requests += 1
            self.stats.request_times.append(time.monotonic())
            self.stats.by_path[model] += 1
        poll_s = self._poll_seconds(handler)
        if not self._transport_ok(handler, model, raw) or not self._admit(handler):
            return
        if model in self._retired:
            self._send(handler, 404, answers.retired(model))
            return
        if model not in MODELS:
            self._violation(f"unknown model path {model}")
            self._send(handler, 404, answers.problem(404, "Not Found", f"no model {model}"))
            return
        body = self._valid_body(handler, model, raw)
        if body is None:
            return
        if self.faults.latency_s:
            time.sleep(self.faults.latency_s)
        if self._random.random() < self.faults.transient_rate:
            self._inject_fault(handler, model, body)
            return
        job = self._accept(model, body)
        if self._random.random() < self.faults.async_rate:
            job.polls_needed = self.faults.polls_before_done + 1
            self._send_pending(handler, job, "pending-evaluation")
            return
        self._hold_then_answer(handler, job, poll_s)

    def _transport_ok(self, handler: Handler, model: str, raw: bytes) -> bool:
        """Headers and size; a body over 5 MB is answered 413."""
        for header in ("Content-Type", "Accept"):
            if "application/json" not in handler.headers.get(header, ""):
                self._violation(f"{model}: {header} is {handler.headers.get(header)!r}")
        if len(raw) <= MAX_BODY:
            return True
        self._violation(f"{model}: body of {len(raw)} bytes is over 5 MB")
        self._send(handler, 413, answers.problem(413, "Payload Too Large", "over 5 MB"))
        return False

    def _valid_body(self, handler: Handler, where: str, raw: bytes) -> dict[str, Any] | None:
        """The JSON body if `where`'s schema takes it, else None once 422 is answered."""
        try:
            body = json.loads(raw, parse_constant=_no_constants)
        except ValueError as exc:
            problems = [
                {
                    "type": "json_invalid",
                    "loc": ["body", 0],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": str(exc)},
                },
            ]
        else:
            problems = self._problems(handler, where, body)
        if not problems:
            return dict(body)
        self._violation(f"{where}: {problems[0]['loc']} {problems[0]['msg']}")
        self._send(handler, 422, {"detail": problems})
        return None

    def _problems(self, handler: Handler, where: str, body: Any) -> list[Error]:
        if where == "nim":
            return NIM_SCHEMA(body)
        if where == "assets":
            return ASSET_SCHEMA(body)
        header = handler.headers.get("NVCF-INPUT-ASSET-REFERENCES", "")
        referenced = {part.strip() for part in header.split(",") if part.strip()}
        with self._lock:
            uploaded = {key for key, asset in self._assets.items() if asset["data"]}
        return validate(where, body, Assets(uploaded, referenced))

    def _accept(self, model: str, body: dict[str, Any]) -> Job:
        """A paid job for `body`, counted (and counted as a duplicate when it is one)."""
        answer = answers.answer(model, body, self._random, self.filter_word)
        job = Job(
            id=str(uuid.uuid4()),
            model=model,
            answer=answer,
            created=time.monotonic(),
            seconds=float(self.faults.job_seconds.get(model, 0.0)),
        )
        key = (model, json.dumps(body, sort_keys=True, separators=(",", ":")))
        with self._lock:
            self._jobs[job.id] = job
            self.stats.jobs += 1
            self.stats.duplicate_jobs += key in self._job_keys
            self._job_keys.add(key)
            self.stats.job_bodies.append((model, body))
        return job

    def _inject_fault(self, handler: Handler, model: str, body: dict[str, Any]) -> None:
        kind = self._random.choice(self.faults.fault_kinds)
        with self._lock:
            self.stats.injected_faults += 1
            self.stats.faults_by_kind[kind] += 1
        if kind == "drop":
            if self.faults.drop_after_accept:
                self._accept(model, body)
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        headers = {}
        if self.faults.retry_after_s is not None:
            headers["Retry-After"] = str(self.faults.retry_after_s)
        status = int(kind)
        self._send(handler, status, answers.problem(status, "injected fault"), headers)

    def _hold_then_answer(self, handler: Handler, job: Job, poll_s: float | None) -> None:
        """Wait for `job` up to `poll_s` seconds (None: as long as it takes), then answer
        its result, or 202 while it still runs."""
        wait = job.remaining() if poll_s is None else min(poll_s, job.remaining())
        if wait > 0:
            self._closing.wait(wait)
        if job.finished():
            self._deliver(handler, job)
        else:
            self._send_pending(handler, job, "in-progress")

    def _send_pending(self, handler: Handler, job: Job, status: str) -> None:
        headers = {
            "NVCF-REQID": job.id,
            "NVCF-STATUS": status,
            "NVCF-PERCENT-COMPLETE": str(job.percent()),
        }
        self._send(handler, 202, None, headers)

    def _deliver(self, handler: Handler, job: Job) -> None:
        headers = {"NVCF-REQID": job.id, "NVCF-STATUS": "fulfilled"}
        if not self.faults.redirect_results:
            self._send(handler, 200, job.answer, headers)
            return
        suffix = "zip" if self.faults.zip_results else "json"
        location = answers.presign(
            self.base_url, f"/storage/results/{job.id}.{suffix}", self._secret
        )
        self._send(handler, 302, None, {**headers, "Location": location})

    def _poll_seconds(self, handler: Handler) -> float | None:
        value = handler.headers.get("NVCF-POLL-SECONDS")
        seconds: float | None = None
        if value is not None:
            try:
                seconds = float(value)
            except ValueError:
                seconds = -1.0
            if not 0 <= seconds <= 3600:
                self._violation(f"NVCF-POLL-SECONDS is {value!r}")
                seconds = None
        with self._lock:
            self.stats.poll_seconds.append(seconds)
        return seconds

    # -- polls and results -------------------------------------------------------------------

    def _status(self, handler: Handler, request_id: str, raw: bytes) -> None:
        """Held up to NVCF-POLL-SECONDS (not at all without it): 202 while the job runs,
        then its result (200, or 302 with `redirect_results`)."""
        with self._lock:
            job = self._jobs.get(request_id)
        if job is None:  # as NVCF: 401/403 for a refused key, else 404; nothing is paid
            with self._lock:
                self.stats.key_checks += 1
            if self._authorised(handler):
                self._send(handler, 404, answers.problem(404, "Not Found", "unknown request id"))
            return
        self._count("poll")
        with self._lock:
            self.stats.polls += 1
        poll_s = self._poll_seconds(handler)
        if not self._admit(handler):
            return
        with self._lock:
            job.polls += 1
        if job.polls < job.polls_needed:
            self._send_pending(handler, job, "in-progress")
        else:
            self._hold_then_answer(handler, job, poll_s or 0.0)

    def _result(self, handler: Handler, name: str, raw: bytes) -> None:
        """A presigned storage URL: no Authorization header, the signature as issued."""
        self._count("result")
        with self._lock:
            self.stats.result_fetches += 1
        if not self._storage_auth_ok(handler, "result fetch"):
            return
        request_id = name.split(".", 1)[0]
        job = self._jobs.get(request_id)
        if job is None or not job.finished():
            self._violation(f"result fetch of unknown or unfinished {name}")
            self._send_xml(handler, 404, "NoSuchKey", "The specified key does not exist.")
            return
        if self.faults.zip_results:
            payload = answers.zipped(request_id, job.answer)
            self._send_bytes(handler, 200, payload, "application/zip")
        else:
            self._send(handler, 200, job.answer)

    def _storage_auth_ok(self, handler: Handler, what: str) -> bool:
        split = urlsplit(handler.path)
        header = handler.headers.get("Authorization")
        if header is not None:
            self._violation(f"{what}: presigned URL sent with an Authorization header")
            message = (
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified"
            )
            extra = {"ArgumentName": "Authorization", "ArgumentValue": header}
            self._send_xml(handler, 400, "InvalidArgument", message, extra)
            return False
        if not answers.signed(split.path, split.query, self._secret):
            self._violation(f"{what}: the presigned URL's query was not sent as issued")
            self._send_xml(handler, 403, "SignatureDoesNotMatch", answers.SIGNATURE_MISMATCH)
            return False
        return True

    # -- assets ------------------------------------------------------------------------------

    def _create_asset(self, handler: Handler, _: str, raw: bytes) -> None:
        self._count("asset_create")
        if "application/json" not in handler.headers.get("Content-Type", ""):
            self._violation("assets: Content-Type is not application/json")
        if not self._admit(handler):
            return
        body = self._valid_body(handler, "assets", raw)
        if body is None:
            return
        asset_id = str(uuid.uuid4())
        with self._lock:
            self._assets[asset_id] = {**body, "data": b""}
            self.stats.assets += 1
        upload_url = answers.presign(self.base_url, f"/storage/uploads/{asset_id}", self._secret)
        self._send(handler, 200, {"assetId": asset_id, "uploadUrl": upload_url, **body})

    def _upload(self, handler: Handler, asset_id: str, raw: bytes) -> None:
        """The presigned PUT: Content-Type and x-amz-meta-nvcf-asset-description are signed."""
        self._count("asset_upload")
        if not self._storage_auth_ok(handler, "asset upload"):
            return
        asset = self._assets.get(asset_id)
        if asset is None:
            self._violation(f"asset upload: no asset {asset_id}")
            self._send_xml(handler, 404, "NoSuchKey", "The specified key does not exist.")
            return
        sent = (
            handler.headers.get("Content-Type"),
            handler.headers.get("x-amz-meta-nvcf-asset-description"),
        )
        if sent != (asset["contentType"], asset["description"]) or not raw:
            self._violation(f"asset upload: headers {sent} or an empty body")
            self._send_xml(handler, 403, "SignatureDoesNotMatch", answers.SIGNATURE_MISMATCH)
            return
        with self._lock:
            asset["data"] = raw
            self.stats.asset_uploads += 1
        self._send_bytes(handler, 200, b"", None)

    def _delete_asset(self, handler: Handler, asset_id: str, raw: bytes) -> None:
        self._count("asset_delete")
        if not self._admit(handler):
            return
        with self._lock:
            found = self._assets.pop(asset_id, None) is not None
            self.stats.assets_deleted += found
        if found:
            self._send_bytes(handler, 204, b"", None)
        else:
            self._violation(f"delete of unknown asset {asset_id}")
            self._send(handler, 404, answers.problem(404, "Not Found", "unknown asset"))

    # -- self-hosted NIM ---------------------------------------------------------------------

    def _nim_infer(self, handler: Handler, _: str, raw: bytes) -> None:
        """A self-hosted FLUX NIM: no auth, FLUX-shaped body, artifacts answer, never 202."""
        self._count("nim")
        with self._lock:
            self.stats.generation_requests += 1
            self.stats.request_times.append(time.monotonic())
            self.stats.by_path["nim"] += 1
        if "Authorization" in handler.headers:
            self._violation("nim: a self-hosted NIM takes no Authorization header")
        body = self._valid_body(handler, "nim", raw)
        if body is not None:
            self._send(handler, 200, answers.answer(FLUX_DEV, body, self._random, self.filter_word))

    def _health(self, handler: Handler, which: str, raw: bytes) -> None:
        ready = which == "live" or not self.nim_loading
        self._send(handler, 200 if ready else 503, {"status": "ready" if ready else "loading"})

    # -- auth, rate limit --------------------------------------------------------------------

    def _admit(self, handler: Handler) -> bool:
        """Authorised and within the rate limit; otherwise answered 401/403/429."""
        if not self._authorised(handler):
            return False
        if not self._rate_limited():
            return True
        with self._lock:
            self.stats.rate_limited += 1
        self._send(handler, 429, {"status": 429, "title": "Too Many Requests"})
        return False

    def _authorised(self, handler: Handler) -> bool:
        header = handler.headers.get("Authorization", "")
        with self._lock:
            self.stats.authorization_headers.append(header)
        if not header.startswith("Bearer nvapi-"):
            self._send_bytes(
                handler, 401, b"Unauthorized", "text/plain", {"WWW-Authenticate": "Bearer"}
            )
            return False
        if header != f"Bearer {self.valid_key}":
            forbidden = {"status": 403, "title": "Forbidden", "detail": "Authorization failed"}
            self._send(handler, 403, forbidden)
            return False
        return True

    def _rate_limited(self) -> bool:
        limit = self.faults.rate_limit_per_minute
        if limit is None:
            return False
        now = time.monotonic()
        with self._lock:
            while self._recent and now - self._recent[0] > 60:
                self._recent.popleft()
            if len(self._recent) >= limit:
                return True
            self._recent.append(now)
        return False

    # -- sending -----------------------------------------------------------------------------

    def _send(
        self,
        handler: Handler,
        status: int,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        content_type = "application/problem+json" if status >= 400 else "application/json"
        self._send_bytes(handler, status, payload, content_type, headers)

    def _send_xml(
        self,
        handler: Handler,
        status: int,
        code: str,
        message: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        payload = answers.s3_error(code, message, **(extra or {}))
        self._send_bytes(handler, status, payload, "application/xml")

    def _send_bytes(
        self,
        handler: Handler,
        status: int,
        payload: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self.stats.statuses[status] += 1
        handler.send_response(status)
        if content_type is not None:
            handler.send_header("Content-Type", content_type)
        if status != 204:
            handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
