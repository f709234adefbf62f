"""The NVIDIA client against a strict fake of the hosted API on loopback, and MockTransport."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from clients.generation.http import ConnectionOptions, RetryPolicy, ServiceConnection
from clients.generation.nvidia import NvidiaClient, image_body
from clients.generation.payloads import fit_for_svd
from clients.generation.ratelimit import RateLimiter
from domain.errors import (
    ContentFilteredError,
    FatalServiceError,
    GenerationError,
    ModelUnavailableError,
    OutcomeUnknownError,
    TransientServiceError,
)
from domain.media import ClipRequest, ImageRequest
from testkit.fakes.nvidia_server import VALID_KEY, FakeNvidia, Faults

SVD_PATH = "stabilityai/stable-video-diffusion"


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1024, 576), (30, 60, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _ignore_poll_seconds(client: NvidiaClient) -> None:
    """Like a gateway that holds the POST until the job is done: no NVCF-POLL-SECONDS sent."""
    client.connection.options = replace(client.connection.options, paid_jobs=True)
    original = client.connection.send

    def send(calls: Any, method: str, url: str, budgeted: bool = True, **kw: Any) -> Any:
        headers = {k: v for k, v in kw.pop("headers", {}).items() if k != "NVCF-POLL-SECONDS"}
        return original(calls, method, url, budgeted, headers=headers, **kw)

    client.connection.send = send  # type: ignore[method-assign]


def _request(prompt: str = "a lion at dawn", model: str = "sdxl") -> ImageRequest:
    cfg, steps = (0.0, 4) if model == "flux.1-schnell" else (5.0, 25)
    return ImageRequest(prompt, "blurry", model, 1234, cfg, "K_DPM_2_ANCESTRAL", steps)


def _client(
    fake: FakeNvidia, key: str = VALID_KEY, attempts: int = 6, resends: int = 0, **kw: float
) -> NvidiaClient:
    options = ConnectionOptions(
        api_base=fake.api_base,
        nvcf_base=fake.nvcf_base,
        poll_interval_s=0.0,
        timeout_s=kw.pop("timeout_s", 10.0),
        poll_deadline_s=900.0,
        retry=RetryPolicy(attempts=attempts, base_delay_s=0.0, max_delay_s=0.0),
        resend_unknown_outcomes=resends,
    )
    limiter = RateLimiter(per_minute=60_000)
    connection = ServiceConnection("NVIDIA API", options, limiter, key, sleep=lambda _: None)
    return NvidiaClient(connection)


@pytest.fixture
def fake() -> Iterator[FakeNvidia]:
    with FakeNvidia() as server:
        yield server


@pytest.mark.parametrize("model", ["sdxl", "sd3-medium", "flux.1-dev", "flux.1-schnell"])
def test_every_image_model_gets_a_request_the_contract_accepts(
    fake: FakeNvidia, model: str
) -> None:
    image = _client(fake).generate_image(_request(model=model))
    assert image.media_type == "image/jpeg" and image.api_calls == 1
    assert Image.open(io.BytesIO(image.data)).size[0] >= 1024
    assert fake.stats.violations == []


def test_model_limits_are_respected_in_the_bodies() -> None:
    for wild in (
        ImageRequest("p", "", "flux.1-schnell", 1, 30.0, "DDIM", 60),
        ImageRequest("p", "", "flux.1-dev", 1, 5.0, "DDIM", 500),
    ):
        with pytest.raises(GenerationError, match="must be"):
            image_body(wild)
    dev = image_body(ImageRequest("p", "", "flux.1-dev", 1, 9.0, "DDIM", 100))
    assert (dev["width"], dev["height"], dev["steps"], dev["cfg_scale"]) == (1344, 768, 100, 9.0)
    sd3 = image_body(ImageRequest("p", "n", "sd3-medium", 1, 5.0, "DDIM", 25))
    assert sd3["aspect_ratio"] == "16:9" and sd3["negative_prompt"] == "n"


def test_svd_gets_a_1024x576_image_inline_and_returns_an_mp4(fake: FakeNvidia) -> None:
    client = _client(fake)
    image = client.generate_image(_request())
    clip = client.generate_clip(ClipRequest(image.data, 1234, 1.8, 127))
    assert b"ftyp" in clip.data[:64]
    assert fake.stats.assets == 0 and fake.stats.violations == []
    assert fit_for_svd(image.data).size == (1024, 576)


def test_large_images_go_through_the_asset_upload(fake: FakeNvidia) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    clip = _client(fake).generate_clip(ClipRequest(buffer.getvalue(), 5, 1.8, 127))
    assert b"ftyp" in clip.data[:64]
    assert fake.stats.assets == 1 == fake.stats.assets_deleted and fake.stats.violations == []
    assert clip.api_calls == 4 == fake.stats.total_requests  # create, upload, POST, delete


@pytest.mark.parametrize("redirect", [False, True])
def test_202_answers_are_polled_until_done(redirect: bool) -> None:
    faults = Faults(async_rate=1.0, polls_before_done=3, redirect_results=redirect)
    with FakeNvidia(faults) as fake:
        image = _client(fake).generate_image(_request())
    assert fake.stats.polls == 4
    assert image.api_calls == fake.stats.total_requests == 5 + redirect
    assert fake.stats.violations == [] and fake.stats.duplicate_jobs == 0


ANSWERED = ("429", "500", "502", "503")


def test_transient_faults_are_retried_and_counted() -> None:
    with FakeNvidia(Faults(transient_rate=0.6, seed=3, fault_kinds=ANSWERED)) as fake:
        client = _client(fake, attempts=20)
        images = [client.generate_image(_request(f"scene {i}")) for i in range(10)]
    assert fake.stats.injected_faults > 0
    assert sum(image.api_calls for image in images) == fake.stats.generation_requests
    assert fake.stats.jobs == 10 and fake.stats.duplicate_jobs == 0


def test_transient_faults_give_up_after_the_attempts() -> None:
    expected = pytest.raises(TransientServiceError, match="gave up after 3 requests")
    with FakeNvidia(Faults(transient_rate=1.0, fault_kinds=ANSWERED)) as fake, expected as caught:
        _client(fake, attempts=3).generate_image(_request())
    assert caught.value.api_calls == 3 == fake.stats.generation_requests


def test_an_answer_lost_after_sending_is_never_sent_again() -> None:
    """A job that outlasts the read timeout (a gateway that ignores NVCF-POLL-SECONDS), and a
    connection dropped once the job was accepted, with no re-sends allowed: outcome unknown,
    one job, no second POST. A slow job is not sent again whatever the budget."""
    slow = Faults(job_seconds={SVD_PATH: 3.0})
    dropped = Faults(transient_rate=1.0, fault_kinds=("drop",), drop_after_accept=True)
    cases = ((slow, 1.0, "no answer within 1 s", 3), (dropped, 10.0, "drop", 0))
    for faults, timeout_s, why, resends in cases:
        with FakeNvidia(faults) as fake, pytest.raises(OutcomeUnknownError, match=why) as lost:
            client = _client(fake, timeout_s=timeout_s, resends=resends)
            client.connection.options = replace(client.connection.options, timeout_s=timeout_s)
            _ignore_poll_seconds(client)
            client.generate_clip(ClipRequest(_jpeg(), 5, 1.8, 127))
        assert fake.stats.jobs == 1 and fake.stats.by_path[SVD_PATH] == 1
        assert lost.value.api_calls == 1 and "a re-run may pay for it again" in str(lost.value)


def test_dropped_answers_are_sent_again_while_the_runs_budget_lasts() -> None:
    """50 scenes at 30 % faults, drops after the job was accepted among them, and a budget of
    15 re-sends: every image made, and no more jobs paid twice than re-sends were spent."""
    faults = Faults(transient_rate=0.3, seed=11, drop_after_accept=True)
    with FakeNvidia(faults) as fake:
        client = _client(fake, attempts=10, resends=15)
        images = [client.generate_image(_request(f"scene {i}")) for i in range(50)]
    resent = sum(image.resent for image in images)
    assert resent == client.connection.resends.used and 0 < resent <= 15
    assert fake.stats.duplicate_jobs == resent, "each re-send of a dropped answer, paid twice"
    assert sum(image.api_calls for image in images) == fake.stats.generation_requests


def test_once_the_budget_is_spent_a_dropped_answer_fails_its_scene() -> None:
    dropped = Faults(transient_rate=1.0, fault_kinds=("drop",), drop_after_accept=True)
    expected = pytest.raises(OutcomeUnknownError, match="2 re-sends of lost answers are spent")
    with FakeNvidia(dropped) as fake, expected as lost:
        _client(fake, resends=2).generate_image(_request())
    assert (lost.value.api_calls, lost.value.resent) == (3, 2)
    assert fake.stats.jobs == 3 and "a re-run may pay for it again" in str(lost.value)


def test_a_job_slower_than_the_read_timeout_is_polled_not_posted_twice() -> None:
    with FakeNvidia(Faults(job_seconds={SVD_PATH: 2.5})) as fake:
        client = _client(fake, timeout_s=2.0)  # the gateway is asked to answer within 1 s
        clip = client.generate_clip(ClipRequest(_jpeg(), 5, 1.8, 127))
    assert b"ftyp" in clip.data[:64]
    assert fake.stats.jobs == 1 and fake.stats.duplicate_jobs == 0 and fake.stats.polls >= 1
    assert set(fake.stats.poll_seconds) == {1.0}
    assert clip.api_calls == fake.stats.total_requests and fake.stats.violations == []


def test_results_behind_a_presigned_302_are_fetched_without_the_key_even_zipped() -> None:
    faults = Faults(async_rate=1.0, polls_before_done=1, redirect_results=True, zip_results=True)
    with FakeNvidia(faults) as fake:
        image = _client(fake).generate_image(_request())
    assert image.media_type == "image/jpeg"
    assert fake.stats.result_fetches == 1 and fake.stats.violations == []
    assert image.api_calls == fake.stats.total_requests


def test_a_retired_model_stops_after_one_request_and_names_the_alternatives() -> None:
    with FakeNvidia() as fake:
        fake.retire("stabilityai/stable-diffusion-xl")
        client = _client(fake)
        with pytest.raises(ModelUnavailableError) as retired:
            client.generate_image(_request())
        with pytest.raises(ModelUnavailableError):
            client.generate_image(_request("another scene"))
        assert fake.stats.generation_requests == 1
        message = str(retired.value)
        assert "image model 'sdxl'" in message and "Not found for account" in message
        assert "sd3-medium, flux.1-dev, flux.1-schnell" in message and "\n" not in message

        fallback = _client(fake)
        fallback.fallback_models = ("flux.1-schnell",)
        image = fallback.generate_image(_request())
    assert image.model == "flux.1-schnell" and image.api_calls == 2
    assert fake.stats.violations == []


def test_a_refused_key_stops_every_later_call_without_sending(fake: FakeNvidia) -> None:
    client = _client(fake, key="nvapi-wrong")
    with pytest.raises(FatalServiceError, match="403"):
        client.generate_image(_request())
    with pytest.raises(FatalServiceError):
        client.generate_image(_request("another scene"))
    assert fake.stats.generation_requests == 1


def test_a_malformed_key_is_fatal_too(fake: FakeNvidia) -> None:
    with pytest.raises(FatalServiceError, match="401"):
        _client(fake, key="not-a-key").generate_image(_request())


def test_content_filtering_is_a_result_not_retried(fake: FakeNvidia) -> None:
    with pytest.raises(ContentFilteredError):
        _client(fake).generate_image(_request("something forbidden"))
    assert fake.stats.generation_requests == 1


def _mock_client(handler: httpx.MockTransport, sleeps: list[float] | None = None) -> NvidiaClient:
    options = ConnectionOptions(
        api_base="https://api.test/v1/genai",
        nvcf_base="https://nvcf.test",
        timeout_s=120.0,
        poll_deadline_s=900.0,
        retry=RetryPolicy(attempts=6),
    )
    record = sleeps.append if sleeps is not None else (lambda _: None)
    connection = ServiceConnection(
        "NVIDIA API", options, RateLimiter(60_000), VALID_KEY, transport=handler, sleep=record
    )
    return NvidiaClient(connection)


def test_retry_after_is_honoured() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}, json={"status": 429}),
            httpx.Response(
                200,
                json={"artifacts": [{"base64": _jpeg_b64(), "finishReason": "SUCCESS", "seed": 3}]},
            ),
        ]
    )
    sleeps: list[float] = []
    client = _mock_client(httpx.MockTransport(lambda request: next(answers)), sleeps)
    assert client.generate_image(_request()).api_calls == 2
    assert sleeps == [7.0]


def test_permanent_errors_are_not_retried_and_never_echo_the_key() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        detail = [{"loc": ["body", "prompt"], "msg": f"bad token {VALID_KEY}", "type": "x"}]
        return httpx.Response(422, json={"detail": detail})

    with pytest.raises(GenerationError) as caught:
        _mock_client(httpx.MockTransport(handler)).generate_image(_request())
    assert len(calls) == 1
    assert VALID_KEY not in str(caught.value) and "***" in str(caught.value)


def test_a_200_that_does_not_decode_is_retried() -> None:
    answers = iter(
        [
            httpx.Response(200, content=b"<html>gateway</html>"),
            httpx.Response(200, json={"artifacts": [{"base64": "%%%", "finishReason": "SUCCESS"}]}),
            httpx.Response(
                200, json={"artifacts": [{"base64": _jpeg_b64(), "finishReason": "SUCCESS"}]}
            ),
        ]
    )
    client = _mock_client(httpx.MockTransport(lambda request: next(answers)))
    assert client.generate_image(_request()).api_calls == 3


def test_the_key_is_sent_only_as_a_bearer_header_and_not_in_repr() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"artifacts": [{"base64": _jpeg_b64(), "finishReason": "SUCCESS"}]}
        )

    client = _mock_client(httpx.MockTransport(handler))
    client.generate_image(_request())
    assert seen[0].headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert VALID_KEY not in seen[0].content.decode() and VALID_KEY not in str(seen[0].url)
    assert VALID_KEY not in repr(client)


def test_rate_limiter_spaces_requests_across_threads() -> None:
    limiter = RateLimiter(per_minute=600, headroom=0.0)  # one every 0.1 s
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(3):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 12
    # No request goes before its slot (so no window ever holds more than the budget) ...
    assert all(stamp - stamps[0] >= index * 0.1 - 0.01 for index, stamp in enumerate(stamps))
    # ... and late wake-ups do not push the later slots back.
    assert stamps[-1] - stamps[0] < 1.1 + 0.3


def test_rate_limiter_burst_allows_that_many_at_once() -> None:
    now = [100.0]
    slept: list[float] = []
    limiter = RateLimiter(60, burst=3, headroom=0.0, clock=lambda: now[0], sleep=slept.append)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0]


def _jpeg_b64() -> str:
    import base64

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_fake_server_rejects_contract_breaks(fake: FakeNvidia) -> None:
    response = httpx.post(
        f"{fake.api_base}/stabilityai/stable-diffusion-xl",
        headers={"Authorization": f"Bearer {VALID_KEY}", "Accept": "application/json"},
        content=json.dumps({"text_prompts": [{"text": "x", "weight": 1}], "width": 512}),
    )
    assert response.status_code == 422
    assert fake.stats.violations


def test_a_refused_key_costs_one_request_however_many_threads_wait(fake: FakeNvidia) -> None:
    client = _client(fake, key="nvapi-revoked")
    errors: list[Exception] = []

    def scene(index: int) -> None:
        try:
            client.generate_image(_request(f"scene {index}"))
        except FatalServiceError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=scene, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 8
    assert fake.stats.generation_requests == 1


def test_nim_backend_generates_images_locally_hosted(fake: FakeNvidia) -> None:
    from clients.generation.nim import NimClient, check_ready
    from clients.media.ffmpeg import probe

    check_ready(fake.base_url)
    options = ConnectionOptions(
        api_base=fake.base_url,
        nvcf_base=fake.nvcf_base,
        timeout_s=10.0,
        poll_deadline_s=60.0,
        retry=RetryPolicy(attempts=3),
    )
    client = NimClient(ServiceConnection("NIM", options, RateLimiter(60_000), sleep=lambda _: None))
    image = client.generate_image(_request(model="flux.1-dev"))
    clip = client.generate_clip(ClipRequest(image.data, 9, 1.8, 127))
    assert fake.stats.by_path["nim"] == 1 and fake.stats.violations == []
    assert image.api_calls == 1 and clip.api_calls == 0
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        path.write_bytes(clip.data)
        info = probe(path)
    assert (info.width, info.height, info.frame_count) == (1024, 576, 25)


def test_a_nim_still_loading_stops_the_run_before_it_starts(fake: FakeNvidia) -> None:
    from clients.generation.nim import check_ready

    fake.nim_loading = True
    with pytest.raises(FatalServiceError, match="still loading"):
        check_ready(fake.base_url)
    with pytest.raises(FatalServiceError, match="unreachable"):
        check_ready("http://127.0.0.1:9")
