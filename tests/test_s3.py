"""S3 as source and target, against moto's S3 server on loopback (a real HTTP endpoint)."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pandas as pd
import pytest

from clients.file_sync import mirror
from clients.media.ffmpeg import probe
from clients.storage import S3Storage, open_storage, safe_name
from domain.errors import AudioError, StorageError
from tasks.ingest import plan_storyboard, recording_here
from testkit.fakes.s3_proxy import FaultPlan, S3FaultProxy
from tests.helpers import DEMO_DIR, assert_clean, run_cli, s3_env
from tests.servers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def buckets(s3: Any) -> tuple[str, str]:
    names = (f"in-{uuid.uuid4().hex[:8]}", f"out-{uuid.uuid4().hex[:8]}")
    for name in names:
        s3.create_bucket(Bucket=name)
    return names


def put_demo(s3: Any, bucket: str, prefix: str, scenes: dict[str, str]) -> None:
    for key_name, demo_file in scenes.items():
        s3.upload_file(str(DEMO_DIR / demo_file), bucket, f"{prefix}{key_name}")


@pytest.mark.parametrize("name", ["../x.wav", "/etc/passwd", "a/../../b", "a\\..\\b", ""])
def test_names_that_leave_their_folder_are_refused(name: str) -> None:
    with pytest.raises(StorageError):
        safe_name(name)


def test_safe_names_pass_unchanged() -> None:
    assert safe_name("projects/alpha story/scène 1.ogg") == "projects/alpha story/scène 1.ogg"


def test_mirror_downloads_only_what_changed(
    s3: Any, buckets: tuple[str, str], tmp_path: Path
) -> None:
    bucket, _ = buckets
    put_demo(s3, bucket, "p/", {"a.ogg": "dawn.ogg", "b.mp3": "river.mp3"})
    storage = open_storage(f"s3://{bucket}/p/")
    assert isinstance(storage, S3Storage)
    mirror(storage, storage.list(), tmp_path)
    first = (tmp_path / "a.ogg").stat().st_mtime_ns
    s3.delete_object(Bucket=bucket, Key="p/b.mp3")
    put_demo(s3, bucket, "p/", {"c.ogg": "night.ogg"})
    mirror(storage, storage.list(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "a.ogg",
        "c.ogg",
    ]
    assert (tmp_path / "a.ogg").stat().st_mtime_ns == first


def test_recordings_a_bucket_source_leaves_out_are_said_once(
    s3: Any, buckets: tuple[str, str], tmp_path: Path
) -> None:
    bucket, _ = buckets
    put_demo(s3, bucket, "p/", {"a.ogg": "dawn.ogg", ".b.ogg": "river.mp3", "c\\d.ogg": "dawn.ogg"})
    plan = plan_storyboard(f"s3://{bucket}/p/", tmp_path / "cache")
    assert [r.scene_id for r in plan.recordings] == ["a"]
    ignored = [warning for warning in plan.warnings if warning.startswith("ignored")]
    assert len(ignored) == 2, plan.warnings
    assert "'.b.ogg'" in ignored[0] and "hidden" in ignored[0]
    assert "'c\\\\d.ogg'" in ignored[1] and "backslash" in ignored[1]


def test_run_from_a_bucket_to_a_bucket(
    s3: Any, buckets: tuple[str, str], s3_endpoint: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    source_bucket, target_bucket = buckets
    prefix = "projects/alpha story/"
    put_demo(
        s3, source_bucket, prefix, {"1 dawn.ogg": "dawn.ogg", "2 nuit étoilée.ogg": "night.ogg"}
    )
    s3.put_object(Bucket=source_bucket, Key=f"{prefix}notes.txt", Body=b"ignored")
    result = run_cli(
        ["run", f"s3://{source_bucket}/{prefix}", "--out", f"s3://{target_bucket}/alpha/"],
        s3_env(cli_env, s3_endpoint),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_clean(result)
    assert f"s3://{target_bucket}/alpha/storyboard.mp4" in result.stdout

    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=target_bucket)["Contents"]}
    assert {
        "alpha/storyboard.mp4",
        "alpha/manifest.csv",
        "alpha/storyboard.srt",
        "alpha/run.json",
    } <= keys
    assert "alpha/scenes/2_nuit_étoilée/clip.mp4" in keys
    head = s3.head_object(Bucket=target_bucket, Key="alpha/storyboard.mp4")
    assert head["ContentType"] == "video/mp4"
    video = tmp_path / "video.mp4"
    s3.download_file(target_bucket, "alpha/storyboard.mp4", str(video))
    assert (probe(video).video_codec, probe(video).audio_codec) == ("h264", "aac")
    manifest_body = s3.get_object(Bucket=target_bucket, Key="alpha/manifest.csv")["Body"].read()
    manifest = pd.read_csv(io.BytesIO(manifest_body), keep_default_na=False)
    assert manifest["scene_id"].tolist() == ["1 dawn", "2 nuit étoilée"]
    assert (
        manifest.loc[0, "source_uri"] == f"s3://{source_bucket}/projects/alpha%20story/1%20dawn.ogg"
    )

    s3.delete_object(Bucket=source_bucket, Key=f"{prefix}2 nuit étoilée.ogg")
    with S3FaultProxy(s3_endpoint, FaultPlan()) as proxy:
        again = run_cli(
            ["run", f"s3://{source_bucket}/{prefix}", "--out", f"s3://{target_bucket}/alpha/"],
            s3_env(cli_env, proxy.endpoint),
            tmp_path,
        )
    assert again.returncode == 0, again.stderr
    _assert_published_in_order(proxy.log.forwarded, f"/{target_bucket}/alpha/")
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=target_bucket)["Contents"]}
    assert not any("nuit" in key for key in keys), "the deleted scene's files are gone"
    manifest_body = s3.get_object(Bucket=target_bucket, Key="alpha/manifest.csv")["Body"].read()
    assert pd.read_csv(io.BytesIO(manifest_body))["scene_id"].tolist() == ["1 dawn"]
    page = s3.get_object(Bucket=target_bucket, Key="alpha/index.html")["Body"].read().decode()
    assert "nuit" not in page


def _assert_published_in_order(requests: list[tuple[str, str]], prefix: str) -> None:
    """Changed files only, scene files before the video, the manifest, review page and
    run.json after it, deletions last."""
    writes = [
        (method, unquote(path)[len(prefix) :])
        for method, path in requests
        if method in {"PUT", "DELETE"}
        and unquote(path).startswith(prefix)
        and not unquote(path)[len(prefix) :].startswith(".storyboard/")  # the run's lease
    ]
    names = [name for method, name in writes if method == "PUT"]
    assert names[-3:] == ["manifest.csv", "index.html", "run.json"], names
    assert "storyboard.mp4" in names and not any(n.startswith("scenes/") for n in names), (
        "the remaining scene's files were unchanged and not uploaded again"
    )
    deleted = [name for method, name in writes if method == "DELETE"]
    assert deleted and all(name.startswith("scenes/2_nuit") for name in deleted), deleted
    assert writes[-len(deleted) :] == [("DELETE", name) for name in deleted]


def test_run_from_a_bucket_to_a_folder_lists_the_source_once(
    s3: Any,
    buckets: tuple[str, str],
    s3_endpoint: str,
    cli_env: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket, _ = buckets
    put_demo(s3, bucket, "story/", {"dawn.ogg": "dawn.ogg"})
    with caplog.at_level(logging.INFO, logger="werkzeug"):  # moto's server logs each request
        result = run_cli(
            ["run", f"s3://{bucket}/story/", "--out", str(tmp_path / "local")],
            s3_env(cli_env, s3_endpoint),
            tmp_path,
        )
    assert result.returncode == 0, result.stderr
    listings = [
        record.getMessage()
        for record in caplog.records
        if f"GET /{bucket}?" in record.getMessage() and "list-type=2" in record.getMessage()
    ]
    assert len(listings) == 1, listings
    assert (tmp_path / "local" / "storyboard.mp4").is_file()
    report = json.loads((tmp_path / "local" / "run.json").read_text())
    assert report["source"] == f"s3://{bucket}/story/"


def test_a_bucket_that_cannot_be_read_exits_1_with_one_line(
    s3_endpoint: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli(
        ["run", "s3://no-such-bucket-here/x/", "--out", str(tmp_path / "o")],
        s3_env(cli_env, s3_endpoint),
        tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "storyboard: error: cannot list s3://no-such-bucket-here/x/: NoSuchBucket (no such bucket)"
    )


def test_credentials_the_endpoint_refuses_exit_1(cli_env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - fixed argument list
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        env = {**s3_env(cli_env, f"http://127.0.0.1:{port}"), "AWS_ACCESS_KEY_ID": "intruder"}
        result = run_cli(["run", "s3://locked/x/", "--out", str(tmp_path / "o")], env, tmp_path)
    finally:
        server.terminate()
        server.wait()
    assert result.returncode == 1
    assert "cannot list s3://locked/x/: InvalidAccessKeyId" in result.stderr
    assert result.stderr.count("\n") == 1


def test_throttling_is_retried_and_the_run_completes(
    s3: Any, buckets: tuple[str, str], s3_endpoint: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    source_bucket, target_bucket = buckets
    put_demo(s3, source_bucket, "story/", {"a.ogg": "dawn.ogg", "b.mp3": "river.mp3"})
    with S3FaultProxy(s3_endpoint, FaultPlan(throttle_every=3)) as proxy:
        result = run_cli(
            ["run", f"s3://{source_bucket}/story/", "--out", f"s3://{target_bucket}/story/"],
            s3_env(cli_env, proxy.endpoint),
            tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert_clean(result)
    throttled = {method for method, _ in proxy.log.throttled}
    assert len(proxy.log.throttled) >= 5, proxy.log.throttled
    assert "PUT" in throttled and throttled & {"GET", "HEAD"}, "reads and writes were throttled"
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=target_bucket)["Contents"]}
    assert {"story/storyboard.mp4", "story/manifest.csv", "story/run.json"} <= keys


def test_a_target_that_refuses_writes_stops_the_run_before_any_work(
    s3: Any, buckets: tuple[str, str], s3_endpoint: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    source_bucket, target_bucket = buckets
    put_demo(s3, source_bucket, "story/", {"a.ogg": "dawn.ogg"})

    def refuse_target_writes(method: str, path: str) -> bool:
        return method in {"PUT", "POST"} and path.startswith(f"/{target_bucket}/")

    with S3FaultProxy(s3_endpoint, FaultPlan(deny=refuse_target_writes)) as proxy:
        result = run_cli(
            ["run", f"s3://{source_bucket}/story/", "--out", f"s3://{target_bucket}/story/"],
            s3_env(cli_env, proxy.endpoint),
            tmp_path,
        )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("storyboard: error")]
    assert errors == [
        f"storyboard: error: cannot write to s3://{target_bucket}/story/: AccessDenied "
        "(the AWS credentials in use may not do this)"
    ], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not any(method == "GET" and "a.ogg" in path for method, path in proxy.log.forwarded)


def test_a_worker_on_another_machine_fetches_its_recording_and_checks_it(
    s3: Any, buckets: tuple[str, str], tmp_path: Path
) -> None:
    bucket, _ = buckets
    put_demo(s3, bucket, "p q/", {"dawn é.ogg": "dawn.ogg"})
    plan = plan_storyboard(f"s3://{bucket}/p q/", tmp_path / "flow machine")
    recording = plan.recordings[0]
    elsewhere = replace(recording, path=tmp_path / "worker machine" / "dawn é.ogg")
    assert recording_here(elsewhere).read_bytes() == (DEMO_DIR / "dawn.ogg").read_bytes()

    put_demo(s3, bucket, "p q/", {"dawn é.ogg": "night.ogg"})
    changed = replace(recording, path=tmp_path / "another worker" / "dawn é.ogg")
    with pytest.raises(AudioError, match="changed in the bucket"):
        recording_here(changed)
    assert not changed.path.exists()
