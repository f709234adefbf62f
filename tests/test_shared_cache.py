"""A content cache shared through S3: what one machine paid for, no other machine pays for."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from clients.cache import ContentCache
from clients.storage import LocalStorage
from tasks.generate import _cached_or_generated, _Made
from testkit.fakes.nvidia_server import FakeNvidia, Faults
from tests.helpers import DEMO_DIR, STORYBOARD, assert_clean, nvidia_env, read_manifest, s3_env


def test_machines_sharing_a_store_produce_each_entry_once(tmp_path: Path) -> None:
    shared = LocalStorage(tmp_path / "shared")
    produced: list[str] = []

    def produce() -> _Made:
        produced.append(threading.current_thread().name)
        time.sleep(0.5)
        return _Made(b"clip bytes", "clip.mp4", 7, 1)

    def machine(name: str) -> None:
        cache = ContentCache(tmp_path / name, shared, poll_s=0.05)
        artifact = _cached_or_generated(cache, "clips", "k" * 64, False, produce)
        assert artifact.path.read_bytes() == b"clip bytes"

    machines = [threading.Thread(target=machine, args=(f"m{i}",), name=f"m{i}") for i in range(3)]
    for thread in machines:
        thread.start()
    for thread in machines:
        thread.join()
    assert len(produced) == 1, produced
    assert all(
        (tmp_path / f"m{i}" / "clips" / "kk" / ("k" * 64) / "clip.mp4").is_file() for i in range(3)
    )
    assert shared.read_bytes(f"clips/kk/{'k' * 64}/.lease") is None, "the lease is released"


def test_a_lease_whose_holder_died_is_taken_over_once_expired(tmp_path: Path) -> None:
    shared = LocalStorage(tmp_path / "shared")
    name = f"clips/kk/{'k' * 64}/.lease"
    shared.write_bytes(name, json.dumps({"owner": "dead", "expires": time.time() + 0.5}).encode())
    cache = ContentCache(tmp_path / "m", shared, poll_s=0.05)
    started = time.monotonic()
    with cache.lock("clips", "k" * 64):
        waited = time.monotonic() - started
        assert b"dead" not in (shared.read_bytes(name) or b"")
    assert 0.4 < waited < 5, waited


@pytest.mark.slow
def test_two_machines_sharing_an_s3_cache_generate_each_scene_once(
    s3_endpoint: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    bucket = f"cache-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    source = tmp_path / "lion"
    shutil.copytree(DEMO_DIR, source)
    config = tmp_path / "fast.yaml"
    config.write_text("generation:\n  requests_per_minute: 600\n")

    def machine(fake: FakeNvidia, name: str) -> dict[str, Any]:
        env = s3_env(nvidia_env(cli_env, fake, tmp_path / "unused"), s3_endpoint)
        env.update(
            STORYBOARD_CACHE_DIR=f"s3://{bucket}/shared/", XDG_CACHE_HOME=str(tmp_path / name)
        )
        return env

    def start(env: dict[str, Any], out: str) -> subprocess.Popen[str]:
        return subprocess.Popen(  # noqa: S603 - fixed argument list
            [STORYBOARD, "run", str(source), "--out", out, "--config", str(config)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    with FakeNvidia(Faults(latency_s=0.5)) as fake:
        runs = [start(machine(fake, name), name) for name in ("a", "b")]
        outputs = [run.communicate(timeout=600) for run in runs]
        together = fake.stats.generation_requests
        third = start(machine(fake, "c"), "c")
        third_output = third.communicate(timeout=600)
        after = fake.stats.generation_requests

    for run, (stdout, stderr) in zip([*runs, third], [*outputs, third_output], strict=True):
        assert run.returncode == 0, stderr
        assert_clean(subprocess.CompletedProcess([], 0, stdout, stderr))
    assert together == 10, "two machines at once: 5 images and 5 clips, each paid once"
    assert after == together, "a third machine with an empty local cache pays nothing"
    reports = [json.loads((tmp_path / name / "run.json").read_text()) for name in "abc"]
    assert sum(report["api_calls"] for report in reports) == 10
    assert reports[2]["cache_hits"] == 10
    manifests = [read_manifest(tmp_path / name) for name in "abc"]
    pd.testing.assert_frame_equal(manifests[0], manifests[1])
    pd.testing.assert_frame_equal(manifests[0], manifests[2])
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=bucket)
    keys = [item["Key"] for item in listed["Contents"]]
    assert sum(key.endswith("/clip.mp4") for key in keys) == 5
    assert not any(key.endswith("/.lease") for key in keys)
