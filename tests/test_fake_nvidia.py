"""The fake NVIDIA API itself (`testkit/fakes/nvidia_server.py`), with plain httpx on loopback:
its schemas to the letter, jobs that take time, faults, redirected results, retired models,
assets and request counting. The client's tests rely on every one of these."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from testkit.fakes.nvidia_schemas import FLUX_DEV, FLUX_SCHNELL, SD3, SDXL, SVD
from testkit.fakes.nvidia_server import VALID_KEY, FakeNvidia, Faults

AUTH = {"Authorization": f"Bearer {VALID_KEY}"}
JSON_HEADERS = {**AUTH, "Accept": "application/json", "Content-Type": "application/json"}
SMALL_JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(60)).decode()
VALID: dict[str, dict[str, Any]] = {
    SDXL: {
        "text_prompts": [{"text": "a lion", "weight": 1}, {"text": "blurry", "weight": -1}],
        "cfg_scale": 5,
        "sampler": "K_DPM_2_ANCESTRAL",
        "seed": 0,
        "steps": 25,
        "width": 1024,
        "height": 1024,
        "samples": 1,
    },
    SD3: {
        "prompt": "a lion",
        "negative_prompt": "blurry",
        "aspect_ratio": "16:9",
        "cfg_scale": 5.0,
        "steps": 50,
        "seed": 3,
        "mode": "text-to-image",
        "output_format": "jpeg",
    },
    FLUX_DEV: {
        "prompt": "a lion",
        "width": 1344,
        "height": 768,
        "cfg_scale": 3.5,
        "steps": 50,
        "seed": 3,
        "mode": "base",
        "samples": 1,
    },
    FLUX_SCHNELL: {
        "prompt": "a lion",
        "width": 1024,
        "height": 1024,
        "cfg_scale": 0,
        "steps": 4,
        "seed": 3,
        "mode": "base",
        "samples": 1,
    },
    SVD: {
        "image": f"data:image/jpeg;base64,{SMALL_JPEG}",
        "seed": 3,
        "cfg_scale": 1.8,
        "motion_bucket_id": 127,
    },
}


@pytest.fixture
def fake() -> Iterator[FakeNvidia]:
    with FakeNvidia() as server:
        yield server


def post(
    fake: FakeNvidia,
    model: str,
    body: Any,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    return httpx.post(
        f"{fake.api_base}/{model}",
        content=json.dumps(body),
        headers={**JSON_HEADERS, **(headers or {})},
        timeout=timeout,
    )


def poll(fake: FakeNvidia, request_id: str, **headers: str) -> httpx.Response:
    url = f"{fake.nvcf_base}/pexec/status/{request_id}"
    return httpx.get(url, headers={**AUTH, **headers}, timeout=10.0)


def with_field(model: str, name: str, value: Any) -> dict[str, Any]:
    return {**VALID[model], name: value}


# -- schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(VALID))
def test_a_valid_body_for_every_model_is_one_job_and_no_violation(
    fake: FakeNvidia, model: str
) -> None:
    response = post(fake, model, VALID[model])
    assert response.status_code == 200, response.text
    assert response.headers["NVCF-STATUS"] == "fulfilled"
    assert (fake.stats.jobs, fake.stats.violations) == (1, [])


@pytest.mark.parametrize("model", list(VALID))
def test_an_unknown_field_is_a_422_in_the_api_shape_and_a_violation(
    fake: FakeNvidia, model: str
) -> None:
    response = post(fake, model, with_field(model, "guidance", 2))
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert set(problem) == {"type", "loc", "msg", "input", "ctx"}
    assert (problem["type"], problem["loc"], problem["input"]) == (
        "extra_forbidden",
        ["body", "guidance"],
        2,
    )
    assert len(fake.stats.violations) == 1 and fake.stats.jobs == 0


EDGES = [
    (SDXL, "cfg_scale", 9, True),
    (SDXL, "cfg_scale", 9.01, False),
    (SDXL, "cfg_scale", 1, False),
    (SDXL, "cfg_scale", 1.01, True),
    (SDXL, "cfg_scale", "5", False),
    (SDXL, "seed", 2**32 - 1, True),
    (SDXL, "seed", 2**32, False),
    (SDXL, "seed", -1, False),
    (SDXL, "seed", True, False),
    (SDXL, "steps", 5, True),
    (SDXL, "steps", 4, False),
    (SDXL, "steps", 100, True),
    (SDXL, "steps", 101, False),
    (SDXL, "steps", 25.0, False),
    (SDXL, "width", 512, False),
    (SDXL, "samples", 2, False),
    (SDXL, "sampler", "K_EULER", False),
    (SDXL, "text_prompts", [{"text": "a", "weight": 1}] * 3, False),
    (SDXL, "text_prompts", [], False),
    (SDXL, "text_prompts", [{"text": "a", "weight": 0.5}], False),
    (SDXL, "text_prompts", [{"text": "a", "weight": True}], False),
    (SDXL, "text_prompts", [{"text": "a", "weight": 1, "extra": 1}], False),
    (SDXL, "text_prompts", [{"text": "", "weight": 1}], False),
    (SDXL, "text_prompts", [{"text": "x" * 10_000, "weight": 1.0}], True),
    (SDXL, "text_prompts", [{"text": "x" * 10_001, "weight": 1}], False),
    (SD3, "aspect_ratio", "21:9", False),
    (SD3, "mode", "image-to-image", False),
    (SD3, "output_format", "png", False),
    (SD3, "negative_prompt", "", True),
    (SD3, "prompt", "x" * 10_001, False),
    (SD3, "seed", 2**32, False),
    (FLUX_DEV, "width", 768, True),
    (FLUX_DEV, "width", 704, False),
    (FLUX_DEV, "height", 800, False),
    (FLUX_DEV, "height", 1408, False),
    (FLUX_DEV, "steps", 4, False),
    (FLUX_DEV, "cfg_scale", 1, False),
    (FLUX_DEV, "cfg_scale", 9, True),
    (FLUX_DEV, "mode", "canny", False),
    (FLUX_DEV, "samples", 2, False),
    (FLUX_SCHNELL, "cfg_scale", 0.0, True),
    (FLUX_SCHNELL, "cfg_scale", 1.5, False),
    (FLUX_SCHNELL, "cfg_scale", False, False),
    (FLUX_SCHNELL, "steps", 1, True),
    (FLUX_SCHNELL, "steps", 5, False),
    (FLUX_SCHNELL, "steps", 0, False),
    (SVD, "motion_bucket_id", 128, False),
    (SVD, "cfg_scale", 9.5, False),
    (SVD, "seed", 2**32, False),
    (SVD, "image", f"data:image/jpg;base64,{SMALL_JPEG}", False),
    (SVD, "image", "data:image/png;base64,not base64!", False),
    (SVD, "image", "data:image/png;base64," + "A" * 200_000, True),
    (SVD, "image", "data:image/png;base64," + "A" * 200_004, False),
]


@pytest.mark.parametrize(("model", "name", "value", "ok"), EDGES)
def test_types_and_ranges_to_the_letter(
    fake: FakeNvidia, model: str, name: str, value: Any, ok: bool
) -> None:
    response = post(fake, model, with_field(model, name, value))
    assert response.status_code == (200 if ok else 422), response.text[:300]
    assert bool(fake.stats.violations) is not ok
    if not ok:
        assert response.json()["detail"][0]["loc"][:2] == ["body", name]


@pytest.mark.parametrize(
    ("model", "name"), [(SD3, "prompt"), (SDXL, "text_prompts"), (SVD, "image")]
)
def test_a_missing_required_field_is_a_422(fake: FakeNvidia, model: str, name: str) -> None:
    body = {key: value for key, value in VALID[model].items() if key != name}
    response = post(fake, model, body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "missing"


def test_a_body_over_5_mb_is_refused(fake: FakeNvidia) -> None:
    response = post(fake, SD3, with_field(SD3, "prompt", "x" * 5_000_001))
    assert response.status_code == 413
    assert fake.stats.violations and fake.stats.jobs == 0


def test_a_body_that_is_not_json_is_a_422(fake: FakeNvidia) -> None:
    url = f"{fake.api_base}/{SD3}"
    response = httpx.post(url, content=b"{'prompt': 1}", headers=JSON_HEADERS)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert fake.stats.violations


def test_the_nim_is_looser_but_refuses_unknown_fields(fake: FakeNvidia) -> None:
    url = f"{fake.base_url}/v1/infer"
    body = {"prompt": "a", "mode": "base", "seed": 1, "steps": 4, "width": 1024, "height": 1024}
    assert httpx.post(url, json={**body, "cfg_scale": 0.0}).status_code == 200
    assert fake.stats.violations == []
    assert httpx.post(url, json={**body, "sampler": "DDIM"}).status_code == 422
    assert len(fake.stats.violations) == 1
    assert fake.stats.jobs == 0 and fake.stats.by_path["nim"] == 2


# -- jobs and time ---------------------------------------------------------------------------


def test_a_slow_job_with_poll_seconds_is_a_202_then_polled_to_200() -> None:
    with FakeNvidia(Faults(job_seconds={SVD: 1.0})) as fake:
        started = time.monotonic()
        accepted = post(fake, SVD, VALID[SVD], headers={"NVCF-POLL-SECONDS": "0.3"})
        held = time.monotonic() - started
        assert accepted.status_code == 202
        assert 0.25 <= held < 0.9
        assert accepted.headers["NVCF-STATUS"] == "in-progress"
        assert 0 < int(accepted.headers["NVCF-PERCENT-COMPLETE"]) < 100
        request_id = accepted.headers["NVCF-REQID"]
        assert poll(fake, request_id, **{"NVCF-POLL-SECONDS": "0"}).status_code == 202
        done = poll(fake, request_id, **{"NVCF-POLL-SECONDS": "5"})
        assert time.monotonic() - started < 1.6
    assert done.status_code == 200 and "video" in done.json()
    assert (fake.stats.jobs, fake.stats.polls, fake.stats.violations) == (1, 2, [])
    assert fake.stats.poll_seconds == [0.3, 0.0, 5.0]


def test_a_slow_job_without_poll_seconds_outlasts_a_short_client_timeout() -> None:
    with FakeNvidia(Faults(job_seconds={SVD: 1.0})) as fake:
        with pytest.raises(httpx.ReadTimeout):
            post(fake, SVD, VALID[SVD], timeout=0.3)
        assert fake.jobs_running() == 1, "the job runs on though nobody waits for it"
        assert fake.stats.jobs == 1
        time.sleep(0.8)
        assert fake.jobs_running() == 0
        assert post(fake, SD3, VALID[SD3], timeout=0.5).status_code == 200, "fast models are"


def test_async_rate_answers_202_at_once_and_needs_polls_before_done() -> None:
    with FakeNvidia(Faults(async_rate=1.0, polls_before_done=2)) as fake:
        accepted = post(fake, SD3, VALID[SD3])
        assert accepted.status_code == 202
        assert accepted.headers["NVCF-STATUS"] == "pending-evaluation"
        request_id = accepted.headers["NVCF-REQID"]
        statuses = [poll(fake, request_id).status_code for _ in range(3)]
    assert statuses == [202, 202, 200]
    assert fake.stats.polls == 3 and fake.stats.jobs == 1


def test_a_poll_of_an_unknown_request_id_checks_the_key_for_free(fake: FakeNvidia) -> None:
    """As NVCF answers: 404 for an accepted key, 403 for a refused one; no job, no request
    counted as paid."""
    unknown = "00000000-0000-0000-0000-000000000000"
    assert poll(fake, unknown).status_code == 404
    assert poll(fake, unknown, Authorization="Bearer nvapi-revoked").status_code == 403
    assert (fake.stats.key_checks, fake.stats.total_requests, fake.stats.jobs) == (2, 0, 0)


def test_duplicate_jobs_are_counted(fake: FakeNvidia) -> None:
    for body in (VALID[SD3], with_field(SD3, "seed", 4), dict(reversed(VALID[SD3].items()))):
        assert post(fake, SD3, body).status_code == 200
    assert (fake.stats.jobs, fake.stats.duplicate_jobs) == (3, 1)
    assert [model for model, _ in fake.stats.job_bodies] == [SD3] * 3
    assert fake.stats.job_bodies[1][1]["seed"] == 4


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["429", "500", "502", "503"])
def test_answered_faults_come_before_any_job(kind: str) -> None:
    faults = Faults(transient_rate=1.0, fault_kinds=(kind,), retry_after_s=2.0)
    with FakeNvidia(faults) as fake:
        response = post(fake, SD3, VALID[SD3])
    assert response.status_code == int(kind) and response.headers["Retry-After"] == "2.0"
    assert (fake.stats.jobs, fake.stats.injected_faults) == (0, 1)
    assert fake.stats.faults_by_kind == {kind: 1}


@pytest.mark.parametrize("after_accept", [False, True])
def test_a_drop_closes_the_connection_before_or_after_the_job(after_accept: bool) -> None:
    faults = Faults(transient_rate=1.0, fault_kinds=("drop",), drop_after_accept=after_accept)
    with FakeNvidia(faults) as fake, pytest.raises(httpx.RemoteProtocolError):
        post(fake, SD3, VALID[SD3])
    assert fake.stats.jobs == (1 if after_accept else 0)
    assert fake.stats.faults_by_kind == {"drop": 1}


def test_faults_refuse_unknown_kinds_and_model_paths() -> None:
    with pytest.raises(ValueError, match="fault_kinds"):
        Faults(fault_kinds=("504",))
    with pytest.raises(ValueError, match="job_seconds"):
        Faults(job_seconds={"svd": 1.0})


def test_retired_models_answer_404_not_found_for_account() -> None:
    with FakeNvidia(Faults(retired_models=(SDXL,))) as fake:
        first = post(fake, SDXL, VALID[SDXL])
        fake.retire(SD3)
        second = post(fake, SD3, VALID[SD3])
        still = post(fake, FLUX_DEV, VALID[FLUX_DEV])
    for response in (first, second):
        body = response.json()
        assert response.status_code == 404
        assert (body["type"], body["status"], body["title"]) == ("about:blank", 404, "Not Found")
        assert re.fullmatch(
            r"Function '[0-9a-f-]{36}': Not found for account '\w+'", body["detail"]
        )
    assert still.status_code == 200 and fake.stats.jobs == 1


# -- redirected results ----------------------------------------------------------------------


def test_a_redirected_result_refuses_authorization_and_takes_the_presigned_url() -> None:
    with FakeNvidia(Faults(redirect_results=True)) as fake:
        redirect = post(fake, SD3, VALID[SD3])
        location = redirect.headers["Location"]
        with_auth = httpx.get(location, headers=AUTH)
        violations = list(fake.stats.violations)
        unsigned = httpx.get(location.split("?")[0])
        plain = httpx.get(location)
    assert redirect.status_code == 302
    assert re.search(
        r"/storage/results/[0-9a-f-]+\.json\?X-Amz-Algorithm=AWS4-HMAC-SHA256", location
    )
    assert with_auth.status_code == 400 and "application/xml" in with_auth.headers["Content-Type"]
    assert "Only one auth mechanism allowed" in with_auth.text
    assert len(violations) == 1
    assert unsigned.status_code == 403 and len(fake.stats.violations) == 2
    assert plain.status_code == 200 and plain.json()["finish_reason"] == "SUCCESS"
    assert fake.stats.result_fetches == 3


def test_a_zipped_result_holds_the_json_answer() -> None:
    with FakeNvidia(Faults(redirect_results=True, zip_results=True, async_rate=1.0)) as fake:
        request_id = post(fake, FLUX_DEV, VALID[FLUX_DEV]).headers["NVCF-REQID"]
        statuses = [poll(fake, request_id) for _ in range(3)]
        result = httpx.get(statuses[-1].headers["Location"])
    assert [response.status_code for response in statuses] == [202, 202, 302]
    assert result.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        assert archive.namelist() == [f"{request_id}.response"]
        answer = json.loads(archive.read(f"{request_id}.response"))
    assert answer["artifacts"][0]["finishReason"] == "SUCCESS"
    assert fake.stats.violations == []


# -- assets, auth, counting ------------------------------------------------------------------


def create_asset(fake: FakeNvidia, **headers: str) -> httpx.Response:
    body = {"contentType": "image/jpeg", "description": "svd input"}
    return httpx.post(f"{fake.nvcf_base}/assets", json=body, headers={**AUTH, **headers})


def upload(fake: FakeNvidia, answer: dict[str, Any], **headers: str) -> httpx.Response:
    sent = {"Content-Type": "image/jpeg", "x-amz-meta-nvcf-asset-description": "svd input"}
    return httpx.put(answer["uploadUrl"], content=b"\xff\xd8jpeg", headers={**sent, **headers})


def test_an_asset_is_created_uploaded_used_and_deleted(fake: FakeNvidia) -> None:
    asset = create_asset(fake).json()
    asset_id = asset["assetId"]
    assert upload(fake, asset).status_code == 200
    body = with_field(SVD, "image", f"data:image/jpeg;asset_id,{asset_id}")
    unnamed = post(fake, SVD, body)
    named = post(fake, SVD, body, headers={"NVCF-INPUT-ASSET-REFERENCES": asset_id})
    deleted = httpx.delete(f"{fake.nvcf_base}/assets/{asset_id}", headers=AUTH)
    after = post(fake, SVD, body, headers={"NVCF-INPUT-ASSET-REFERENCES": asset_id})
    assert (unnamed.status_code, named.status_code, after.status_code) == (422, 200, 422)
    assert deleted.status_code == 204 and not deleted.content
    again = httpx.delete(f"{fake.nvcf_base}/assets/{asset_id}", headers=AUTH)
    assert again.status_code == 404
    stats = fake.stats
    assert (stats.assets, stats.asset_uploads, stats.assets_deleted, stats.jobs) == (1, 1, 1, 1)


def test_an_asset_upload_takes_no_authorization_and_its_signed_headers(fake: FakeNvidia) -> None:
    asset = create_asset(fake).json()
    assert upload(fake, asset, **AUTH).status_code == 400
    assert upload(fake, asset, **{"x-amz-meta-nvcf-asset-description": "x"}).status_code == 403
    assert len(fake.stats.violations) == 2 and fake.stats.asset_uploads == 0


@pytest.mark.parametrize(("token", "status"), [("not-a-key", 401), ("nvapi-wrong", 403)])
def test_bad_keys_are_refused_on_every_authenticated_route(
    fake: FakeNvidia, token: str, status: int
) -> None:
    bad = {"Authorization": f"Bearer {token}"}
    responses = [
        post(fake, SD3, VALID[SD3], headers=bad),
        poll(fake, "any", **bad),
        create_asset(fake, **bad),
        httpx.delete(f"{fake.nvcf_base}/assets/any", headers=bad),
    ]
    assert [response.status_code for response in responses] == [status] * 4
    if status == 401:
        assert responses[0].headers["WWW-Authenticate"] == "Bearer"
    assert fake.stats.jobs == 0 and fake.stats.assets == 0


def test_the_rate_limit_counts_polls_too() -> None:
    with FakeNvidia(Faults(rate_limit_per_minute=2, async_rate=1.0)) as fake:
        request_id = post(fake, SD3, VALID[SD3]).headers["NVCF-REQID"]
        assert poll(fake, request_id).status_code == 202
        assert poll(fake, request_id).status_code == 429
    assert fake.stats.rate_limited == 1


def test_total_requests_counts_every_hosted_request_but_not_health_checks() -> None:
    with FakeNvidia(Faults(redirect_results=True, job_seconds={SVD: 0.5})) as fake:
        asset = create_asset(fake).json()
        upload(fake, asset)
        body = with_field(SVD, "image", f"data:image/jpeg;asset_id,{asset['assetId']}")
        headers = {"NVCF-INPUT-ASSET-REFERENCES": asset["assetId"], "NVCF-POLL-SECONDS": "0"}
        accepted = post(fake, SVD, body, headers=headers)
        redirect = poll(fake, accepted.headers["NVCF-REQID"], **{"NVCF-POLL-SECONDS": "3"})
        httpx.get(redirect.headers["Location"])
        httpx.delete(f"{fake.nvcf_base}/assets/{asset['assetId']}", headers=AUTH)
        httpx.get(f"{fake.base_url}/v1/health/ready")
        httpx.get(f"{fake.base_url}/v1/health/live")
    assert (accepted.status_code, redirect.status_code) == (202, 302)
    assert fake.stats.total_requests == 6
    assert fake.stats.requests_by_kind == {
        "asset_create": 1,
        "asset_upload": 1,
        "generate": 1,
        "poll": 1,
        "result": 1,
        "asset_delete": 1,
    }
    assert (fake.stats.polls, fake.stats.result_fetches, fake.stats.violations) == (1, 1, [])
