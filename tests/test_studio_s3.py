"""The review studio over S3 (`storyboard studio s3://in/projects/ --out s3://out/rendered/`)
against a real S3 protocol server on loopback (moto in server mode): the storyboards are
found in the bucket, a new recording replaces the scene's object and keeps the old one under
`.storyboard/history/`, a take edits `storyboard.yaml` in the bucket round-trip, and a broken
upload changes no object. Renders are recorded by a fake backend (the S3 render itself is
`tests/test_s3.py`'s)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
import yaml
from starlette.testclient import TestClient

from studio.app import create_app
from studio.config import StudioConfig
from studio.renders import RenderJob, RenderService
from tests.helpers import DEMO_DIR, STUDIO_URL, studio_page, wait_until_idle

BOARD = "alpha"
STORYBOARD_YAML = """\
# kept through every edit
title: Bucket board
scenes:
  - id: dawn    # first
  - id: river
"""


class RecordedRenders:
    name = "recorded"
    label = "recorded renders (tests)"

    def __init__(self) -> None:
        self.scenes: list[list[str]] = []

    def execute(self, job: RenderJob, fingerprint: str | None) -> None:
        self.scenes.append(list(job.scenes))
        job.state, job.exit_status, job.detail = "done", 0, "rendered"


@pytest.fixture
def bucket(s3_endpoint: str) -> tuple[Any, str]:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"studio-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    for file_name in ("dawn.ogg", "river.mp3"):
        s3.upload_file(str(DEMO_DIR / file_name), name, f"projects/{BOARD}/{file_name}")
    s3.put_object(Bucket=name, Key=f"projects/{BOARD}/storyboard.yaml", Body=STORYBOARD_YAML)
    return s3, name


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed
    }


def test_the_studio_edits_a_storyboard_kept_in_a_bucket(bucket: tuple[Any, str]) -> None:
    s3, name = bucket
    config = StudioConfig(
        source=f"s3://{name}/projects/",
        target=f"s3://{name}/rendered/",
        max_upload_bytes=1024 * 1024,
        max_recording_s=900.0,
    )
    recorded = RecordedRenders()
    renders = RenderService(config, lambda: recorded, claim_poll_s=0.05)
    with TestClient(
        create_app(config, renders), base_url=STUDIO_URL, headers={"Accept": "application/json"}
    ) as client:
        home = client.get("/")
        assert home.status_code == 200 and BOARD in home.text
        page, token = studio_page(client, BOARD)
        assert "dawn" in page and "river" in page
        headers = {"X-CSRF-Token": token}

        def post(scene: str, action: str, **options: Any) -> Any:
            return client.post(
                f"/storyboard/scene/{scene}/{action}",
                params={"board": BOARD},
                headers=headers,
                **options,
            )

        before = _objects(s3, name)
        broken = post(
            "dawn", "recording", files={"file": ("x.wav", b"RIFF not audio", "audio/wav")}
        )
        assert broken.status_code == 400 and _objects(s3, name) == before

        new = (DEMO_DIR / "storm.m4a").read_bytes()
        answer = post("dawn", "recording", files={"file": ("../dawn.wav", new, "audio/wav")})
        assert answer.status_code == 200, answer.text
        assert post("river", "take", data={"seed": "11"}).status_code == 200
        wait_until_idle(client, BOARD, 10)

    after = _objects(s3, name)
    board = f"projects/{BOARD}"
    assert after[f"{board}/dawn.m4a"] == new and f"{board}/dawn.ogg" not in after
    history = [key for key in after if key.startswith(f"{board}/.storyboard/history/dawn/")]
    assert len(history) == 1 and after[history[0]] == before[f"{board}/dawn.ogg"]
    text = after[f"{board}/storyboard.yaml"].decode()
    assert "# kept through every edit" in text and "# first" in text
    scenes = yaml.safe_load(text)["scenes"]
    assert [scene["id"] for scene in scenes] == ["dawn", "river"]
    assert scenes[1]["seed"] == 11
    assert not any(key.startswith("rendered/") for key in after), "inputs only: no outputs"
    assert sorted(scene for asked in recorded.scenes for scene in asked) == ["dawn", "river"]
