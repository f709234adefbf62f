"""`storyboard listen` end to end: a bucket on moto's server notifies an SQS queue, the
listener turns the notifications into events on the session's Prefect server, and the
`on-upload` deployment its proactive trigger starts renders the folder.

The trigger is evaluated every second here (`PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY`,
set on the tests' Prefect servers; 5 s by default) and the runner polls for the run every
second (`cli_env`)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pandas as pd
import pytest

from testkit.fakes.nvidia_server import FakeNvidia
from testkit.servers import deployment_runs
from tests.helpers import DEMO_DIR, STORYBOARD, nvidia_env, s3_env

SETTLE_S = 10.0
FOLDER = "new folder+ é"


@pytest.fixture
def bucket_and_queue(s3_endpoint: str) -> tuple[Any, Any, str, str]:
    """A bucket whose notifications go to a new queue; S3 and SQS clients; the queue's URL."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint)
    bucket = f"drops-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName=bucket)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    events = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn["Attributes"]["QueueArn"], "Events": events}]
        },
    )
    return s3, sqs, bucket, queue


@pytest.fixture
def listening(
    bucket_and_queue: tuple[Any, Any, str, str],
    s3_endpoint: str,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[tuple[FakeNvidia, Path]]:
    """`storyboard listen` running against the fake NVIDIA API; its output's file."""
    _, _, bucket, queue = bucket_and_queue
    log = tmp_path / "listen.log"
    with FakeNvidia() as fake:
        env = nvidia_env(s3_env(cli_env, s3_endpoint), fake, tmp_path / "cache")
        command = [STORYBOARD, "listen", queue, "--source", f"s3://{bucket}/in/"]
        command += ["--out", f"s3://{bucket}/out/", "--settle", str(SETTLE_S)]
        with log.open("w") as sink:
            process = subprocess.Popen(  # noqa: S603 - fixed argument list
                command, env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            _wait_for(lambda: "test event" in log.read_text(), 120, log)
            _wait_for(lambda: "storyboard-upload/on-upload" in log.read_text(), 120, log)
            yield fake, log
        finally:
            process.terminate()
            process.wait(timeout=60)


def _wait_for(condition: Any, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"waited {seconds} s in vain:\n{log.read_text()[-3000:]}")


def _upload_runs(api: str) -> list[dict[str, Any]]:
    return deployment_runs(api, "storyboard-upload/on-upload")


def _finished(api: str, count: int) -> bool:
    runs = _upload_runs(api)
    return len(runs) >= count and all(run["state_type"] == "COMPLETED" for run in runs)


def _report(s3: Any, bucket: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=bucket, Key=f"out/{FOLDER}/run.json")["Body"].read()
    return dict(json.loads(body))


def _created_s(run: dict[str, Any]) -> float:
    return datetime.fromisoformat(run["created"].replace("Z", "+00:00")).timestamp()


def test_uploads_render_their_folder_once_quiet_and_only_what_changed(
    bucket_and_queue: tuple[Any, Any, str, str],
    listening: tuple[FakeNvidia, Path],
    prefect_api: str,
) -> None:
    s3, sqs, bucket, queue = bucket_and_queue
    fake, log = listening
    for name in ("dawn.ogg", "night.ogg", "storm.m4a"):
        s3.upload_file(str(DEMO_DIR / name), bucket, f"in/{FOLDER}/{name}")
    uploaded = time.time()
    _wait_for(lambda: _finished(prefect_api, 1), 180, log)
    first_run = _upload_runs(prefect_api)[0]
    assert _created_s(first_run) - uploaded <= SETTLE_S + 15
    assert fake.stats.generation_requests == 6
    assert _report(s3, bucket)["scenes"]["ok"] == 3
    assert "ignored S3's test event" in log.read_text()

    stored = s3.head_object(Bucket=bucket, Key=f"in/{FOLDER}/dawn.ogg")
    again = {
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-12-06T10:00:00.000Z",
        "s3": {
            "bucket": {"name": bucket},
            "object": {
                "key": quote_plus(f"in/{FOLDER}/dawn.ogg", safe="/"),
                "eTag": stored["ETag"],
            },
        },
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [again]}))
    s3.upload_file(str(DEMO_DIR / "river.mp3"), bucket, f"in/{FOLDER}/river.mp3")
    s3.put_object(Bucket=bucket, Key=f"in/{FOLDER}/notes.txt", Body=b"not a recording")
    s3.delete_object(Bucket=bucket, Key=f"in/{FOLDER}/storm.m4a")
    _wait_for(lambda: _finished(prefect_api, 2), 180, log)
    assert len(_upload_runs(prefect_api)) == 2, "changes within the settle window are one render"
    assert fake.stats.generation_requests == 8, "only the new scene; a redelivery costs nothing"
    rendered = _report(s3, bucket)
    assert rendered["scenes"]["ok"] == 3
    assert rendered["assembly"]["segments_encoded"] == 1, "river's; none for dawn's redelivery"
    assert "not a recording" in log.read_text()
    manifest = s3.get_object(Bucket=bucket, Key=f"out/{FOLDER}/manifest.csv")["Body"]
    assert list(pd.read_csv(manifest)["scene_id"]) == ["dawn", "night", "river"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"out/{FOLDER}/scenes/storm/")
    assert listed.get("KeyCount", 0) == 0, "a removed recording's outputs go"
