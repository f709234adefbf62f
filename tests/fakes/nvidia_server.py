"""A strict stand-in for NVIDIA's hosted generative API, on a real loopback HTTP server.

It follows `shared/reference/nvidia-genai-api.md`: the same paths, request validation (422 for
an invalid field, 401/403 for bad keys), answer shapes (SDXL/FLUX `artifacts`, SD3 `image`, SVD
`video`), `202` + NVCF polling with `302` redirects, and asset uploads. Faults are switchable:
transient errors (429, 500, 502, 503), dropped connections, slow answers, asynchronous answers,
content filtering, a rate limit of its own, and a refused key. Every request that breaks the
contract is recorded in `violations`.
"""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from clients.media.video import CLIP_ENCODING, encode_frames, push_in_frames

VALID_KEY = "nvapi-test-0123456789abcdef"
FILTER_WORD = "forbidden"
SAMPLERS = {"DDIM", "K_EULER_ANCESTRAL", "K_LMS", "K_DPM_2_ANCESTRAL"}
IMAGE_MODELS = {
    "stabilityai/stable-diffusion-xl",
    "stabilityai/stable-diffusion-3-medium",
    "black-forest-labs/flux.1-dev",
    "black-forest-labs/flux.1-schnell",
}
SVD = "stabilityai/stable-video-diffusion"


@dataclass
class Faults:
    transient_rate: float = 0.0
    """Share of generation requests answered 429/500/502/503 or dropped."""
    async_rate: float = 0.0
    """Share answered 202, to be polled."""
    latency_s: float = 0.0
    polls_before_done: int = 2
    redirect_results: bool = False
    retry_after_s: float | None = None
    rate_limit_per_minute: int | None = None
    seed: int = 7


@dataclass
class Stats:
    generation_requests: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    injected_faults: int = 0
    rate_limited: int = 0
    polls: int = 0
    assets: int = 0
    violations: list[str] = field(default_factory=list)
    authorization_headers: list[str] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    """When each generation request arrived (time.monotonic())."""


class FakeNvidia:
    """Start with `with FakeNvidia() as fake:`; point the client at `fake.api_base`."""

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
        self._random = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._assets: dict[str, bytes | None] = {}
        self._recent: deque[float] = deque()
        self._video = base64.b64encode(_sample_video()).decode()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

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

    def __enter__(self) -> FakeNvidia:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- request handling -------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

            def do_PUT(self) -> None:
                fake._dispatch(self, "PUT")

        return Handler

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path
        try:
            if method == "POST" and path.startswith("/v1/genai/"):
                self._generate(handler, path.removeprefix("/v1/genai/"), raw)
            elif method == "GET" and path.startswith("/v2/nvcf/pexec/status/"):
                self._status(handler, path.rsplit("/", 1)[-1])
            elif method == "GET" and path.startswith("/results/"):
                self._redirected_result(handler, path.rsplit("/", 1)[-1])
            elif method == "POST" and path == "/v2/nvcf/assets":
                self._create_asset(handler, raw)
            elif method == "PUT" and path.startswith("/uploads/"):
                self._upload(handler, path.rsplit("/", 1)[-1], raw)
            elif method == "POST" and path == "/v1/infer":
                self._nim_infer(handler, raw)
            elif method == "GET" and path in ("/v1/health/ready", "/v1/health/live"):
                ready = path.endswith("live") or not self.nim_loading
                self._send(
                    handler, 200 if ready else 503, {"status": "ready" if ready else "loading"}
                )
            else:
                self._send(handler, 404, {"status": 404, "title": "Not Found", "detail": path})
        except (BrokenPipeError, ConnectionResetError):
            return

    def _violation(self, message: str) -> None:
        with self._lock:
            self.stats.violations.append(message)

    def _authorised(self, handler: BaseHTTPRequestHandler) -> bool:
        header = handler.headers.get("Authorization", "")
        with self._lock:
            self.stats.authorization_headers.append(header)
        if not header.startswith("Bearer nvapi-"):
            self._send_text(handler, 401, "Unauthorized", {"WWW-Authenticate": "Bearer"})
            return False
        if header != f"Bearer {self.valid_key}":
            self._send(
                handler,
                403,
                {"status": 403, "title": "Forbidden", "detail": "Authorization failed"},
            )
            return False
        return True

    def _generate(self, handler: BaseHTTPRequestHandler, model: str, raw: bytes) -> None:
        with self._lock:
            self.stats.generation_requests += 1
            self.stats.request_times.append(time.monotonic())
            self.stats.by_path[model] += 1
        if len(raw) > 5 * 1024 * 1024:
            self._violation(f"{model}: body of {len(raw)} bytes is over 5 MB")
        for header, expected in (
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ):
            if expected not in handler.headers.get(header, ""):
                self._violation(f"{model}: {header} is {handler.headers.get(header)!r}")
        if not self._authorised(handler):
            return
        if self._rate_limited():
            with self._lock:
                self.stats.rate_limited += 1
            self._send(handler, 429, {"status": 429, "title": "Too Many Requests"})
            return
        if model not in IMAGE_MODELS and model != SVD:
            self._send(handler, 404, {"status": 404, "title": "Not Found", "detail": model})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._violation(f"{model}: body is not JSON")
            self._send(handler, 400, {"status": 400, "title": "Bad Request", "detail": "not JSON"})
            return
        problems = _validate(model, body, handler, self._assets)
        if problems:
            self._violation(f"{model}: {problems[0]}")
            detail = [
                {"type": "value_error", "loc": ["body", p.split(":")[0]], "msg": p}
                for p in problems
            ]
            self._send(handler, 422, {"detail": detail})
            return
        if self.faults.latency_s:
            time.sleep(self.faults.latency_s)
        roll = self._random.random()
        if roll < self.faults.transient_rate:
            with self._lock:
                self.stats.injected_faults += 1
            self._inject_fault(handler)
            return
        answer = self._answer(model, body)
        if self._random.random() < self.faults.async_rate:
            request_id = str(uuid.uuid4())
            with self._lock:
                self._pending[request_id] = {"answer": answer, "polls": 0}
            headers = {
                "NVCF-REQID": request_id,
                "NVCF-STATUS": "pending-evaluation",
                "NVCF-PERCENT-COMPLETE": "0",
            }
            self._send(handler, 202, None, headers)
            return
        self._send(handler, 200, answer)

    def _nim_infer(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        """A self-hosted FLUX NIM: no auth, FLUX-shaped body, artifacts answer, never 202."""
        with self._lock:
            self.stats.generation_requests += 1
            self.stats.request_times.append(time.monotonic())
            self.stats.by_path["nim"] += 1
        if "Authorization" in handler.headers:
            self._violation("nim: a self-hosted NIM takes no Authorization header")
        body = json.loads(raw)
        problems = _validate("black-forest-labs/flux.1-dev", body, handler, self._assets)
        if problems:
            self._violation(f"nim: {problems[0]}")
            self._send(handler, 422, {"detail": [{"loc": ["body"], "msg": problems[0]}]})
            return
        self._send(handler, 200, self._answer("black-forest-labs/flux.1-dev", body))

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

    def _inject_fault(self, handler: BaseHTTPRequestHandler) -> None:
        kind = self._random.choice(["429", "500", "502", "503", "drop"])
        if kind == "drop":
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        headers = {}
        if self.faults.retry_after_s is not None:
            headers["Retry-After"] = str(self.faults.retry_after_s)
        status = int(kind)
        self._send(handler, status, {"status": status, "title": "injected fault"}, headers)

    def _answer(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        seed = int(body.get("seed") or self._random.randint(1, 2**31))
        if model == SVD:
            return {"video": self._video, "finish_reason": "SUCCESS", "seed": seed}
        prompt = body.get("prompt") or body["text_prompts"][0]["text"]
        filtered = self.filter_word in prompt.lower()
        size = (int(body.get("width", 1024)), int(body.get("height", 1024)))
        if model.endswith("stable-diffusion-3-medium"):
            size = {"16:9": (1344, 768), "9:16": (768, 1344)}.get(
                body.get("aspect_ratio", "1:1"), (1024, 1024)
            )
        image = "" if filtered else base64.b64encode(_sample_image(prompt, seed, size)).decode()
        reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
        if model.endswith("stable-diffusion-3-medium"):
            return {"image": image, "finish_reason": reason, "seed": seed}
        return {"artifacts": [{"base64": image, "finishReason": reason, "seed": seed}]}

    def _status(self, handler: BaseHTTPRequestHandler, request_id: str) -> None:
        with self._lock:
            self.stats.polls += 1
        if not self._authorised(handler):
            return
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None:
                finished = request_id in self._results
            else:
                pending["polls"] += 1
                finished = pending["polls"] > self.faults.polls_before_done
                if finished:
                    self._results[request_id] = self._pending.pop(request_id)["answer"]
        if pending is None and not finished:
            self._send(
                handler, 404, {"status": 404, "title": "Not Found", "detail": "unknown request id"}
            )
            return
        if not finished:
            headers = {
                "NVCF-REQID": request_id,
                "NVCF-STATUS": "in-progress",
                "NVCF-PERCENT-COMPLETE": "50",
            }
            self._send(handler, 202, None, headers)
            return
        if self.faults.redirect_results:
            self._send(handler, 302, None, {"Location": f"{self.base_url}/results/{request_id}"})
            return
        self._send(handler, 200, self._results[request_id])

    def _redirected_result(self, handler: BaseHTTPRequestHandler, request_id: str) -> None:
        if not self._authorised(handler):
            return
        answer = self._results.get(request_id)
        if answer is None:
            self._send(handler, 404, {"status": 404, "title": "Not Found"})
            return
        self._send(handler, 200, answer)

    def _create_asset(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        if not self._authorised(handler):
            return
        body = json.loads(raw or b"{}")
        if not body.get("contentType", "").startswith("image/") or "description" not in body:
            self._violation("assets: contentType and description are required")
            self._send(
                handler, 422, {"detail": [{"loc": ["body", "contentType"], "msg": "required"}]}
            )
            return
        asset_id = str(uuid.uuid4())
        with self._lock:
            self._assets[asset_id] = None
            self.stats.assets += 1
        self._send(
            handler,
            200,
            {
                "assetId": asset_id,
                "uploadUrl": f"{self.base_url}/uploads/{asset_id}",
                "contentType": body["contentType"],
                "description": body["description"],
            },
        )

    def _upload(self, handler: BaseHTTPRequestHandler, asset_id: str, raw: bytes) -> None:
        if "Authorization" in handler.headers:
            self._violation("asset upload: the PUT must not carry Authorization")
        if not handler.headers.get("x-amz-meta-nvcf-asset-description"):
            self._violation("asset upload: x-amz-meta-nvcf-asset-description missing")
        if asset_id not in self._assets:
            self._send(handler, 404, None)
            return
        with self._lock:
            self._assets[asset_id] = raw
        self._send(handler, 200, None)

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        with self._lock:
            self.stats.statuses[status] += 1
        handler.send_response(status)
        content_type = "application/problem+json" if status >= 400 else "application/json"
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _send_text(
        self, handler: BaseHTTPRequestHandler, status: int, text: str, headers: dict[str, str]
    ) -> None:
        payload = text.encode()
        with self._lock:
            self.stats.statuses[status] += 1
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)


def _validate(
    model: str,
    body: dict[str, Any],
    handler: BaseHTTPRequestHandler,
    assets: dict[str, bytes | None],
) -> list[str]:
    problems: list[str] = []

    def need(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    if model == "stabilityai/stable-diffusion-xl":
        prompts = body.get("text_prompts")
        need(isinstance(prompts, list) and bool(prompts), "text_prompts: required")
        for item in prompts or []:
            need(
                isinstance(item, dict)
                and isinstance(item.get("text"), str)
                and item.get("weight") in (1, -1),
                "text_prompts: {text, weight ±1}",
            )
        need(body.get("sampler") in SAMPLERS, f"sampler: not one of {sorted(SAMPLERS)}")
        need(body.get("width") == 1024 and body.get("height") == 1024, "width/height: only 1024")
        need(body.get("samples", 1) == 1, "samples: only 1")
        need(isinstance(body.get("steps"), int) and body["steps"] >= 5, "steps: >= 5")
        need(isinstance(body.get("seed"), int) and body["seed"] >= 0, "seed: >= 0")
    elif model == "stabilityai/stable-diffusion-3-medium":
        need(
            isinstance(body.get("prompt"), str) and 0 < len(body["prompt"]) <= 10_000,
            "prompt: 1..10000 chars",
        )
        need(
            body.get("aspect_ratio", "1:1") in {"1:1", "16:9", "9:16", "5:4", "4:5", "3:2", "2:3"},
            "aspect_ratio: invalid",
        )
        need(body.get("cfg_scale", 5) <= 9, "cfg_scale: <= 9")
        need(5 <= body.get("steps", 50) <= 100, "steps: 5..100")
        need(body.get("mode", "text-to-image") == "text-to-image", "mode: text-to-image")
    elif model.startswith("black-forest-labs/"):
        schnell = model.endswith("schnell")
        need(isinstance(body.get("prompt"), str) and bool(body["prompt"]), "prompt: required")
        for side in ("width", "height"):
            value = body.get(side, 1024)
            need(768 <= value <= 1344 and value % 64 == 0, f"{side}: 768..1344 step 64")
        steps = body.get("steps", 4 if schnell else 50)
        need(1 <= steps <= 4 if schnell else 5 <= steps <= 100, "steps: out of range")
        need(
            body.get("cfg_scale", 0) == 0 if schnell else body.get("cfg_scale", 5) <= 9,
            "cfg_scale: out of range",
        )
        need(body.get("mode", "base") == "base", "mode: base")
        need(body.get("samples", 1) == 1, "samples: only 1")
    elif model == SVD:
        image = body.get("image")
        need(isinstance(image, str) and image.startswith("data:image/"), "image: data URI required")
        if isinstance(image, str) and ";asset_id," in image:
            asset_id = image.rsplit(",", 1)[-1]
            need(assets.get(asset_id) is not None, "image: asset not uploaded")
            need(
                handler.headers.get("NVCF-INPUT-ASSET-REFERENCES") == asset_id,
                "NVCF-INPUT-ASSET-REFERENCES: missing",
            )
        elif isinstance(image, str):
            need(len(image.split(",", 1)[-1]) <= 200_000, "image: inline image too large")
        need(body.get("motion_bucket_id", 127) == 127, "motion_bucket_id: only 127")
        need(isinstance(body.get("seed", 0), int), "seed: integer")
    return problems


def _sample_image(prompt: str, seed: int, size: tuple[int, int]) -> bytes:
    rng = random.Random(f"{prompt}|{seed}")
    colour = tuple(rng.randint(40, 220) for _ in range(3))
    image = Image.new("RGB", size, colour)  # type: ignore[arg-type]
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _sample_video() -> bytes:
    frame = Image.new("RGB", (1024, 576), (90, 120, 160))
    return encode_frames(push_in_frames(frame, 1, 25, 1024, 576), 6, CLIP_ENCODING)
