"""Load with faults: 20 scenes against the strict fake NVIDIA API failing 30 % of requests
(answered before a job is accepted, or the connection dropped once it was), 20 % answered
202, SVD jobs slower than the read timeout, and results behind presigned 302s as zips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tasks.ingest import is_recording
from testkit.fakes.nvidia_server import FakeNvidia, Faults
from tests.helpers import DEMO_DIR, assert_clean, nvidia_env, run_cli

pytestmark = pytest.mark.slow
SCENES = 20


def test_thirty_percent_transient_faults_over_twenty_scenes_end_with_every_scene_ok(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    demo = sorted(path for path in DEMO_DIR.iterdir() if is_recording(path.name))
    source = tmp_path / "twenty"
    source.mkdir()
    for index in range(SCENES):
        recording = demo[index % len(demo)]
        shutil.copy(recording, source / f"scene_{index + 1}{recording.suffix}")
    config = tmp_path / "config.yaml"
    config.write_text(
        "generation:\n  requests_per_minute: 6000\n  concurrency: 8\n  max_attempts: 10\n"
        "  request_timeout_s: 3\n"  # the gateway is asked to answer within 1 s
        "  resend_unknown_outcomes: 15\n"
        "assembly:\n  fps: 8\n  width: 512\n  height: 288\n"
    )
    faults = Faults(
        transient_rate=0.3,
        async_rate=0.2,
        seed=30,
        fault_kinds=("429", "500", "502", "503", "drop"),
        drop_after_accept=True,
        job_seconds={"stabilityai/stable-video-diffusion": 1.5},
        redirect_results=True,
        zip_results=True,
    )
    with FakeNvidia(faults) as fake:
        env = nvidia_env(cli_env, fake, tmp_path / "cache")
        result = run_cli(
            ["run", str(source), "--out", str(tmp_path / "out"), "--config", str(config)],
            env,
            tmp_path,
        )
        stats = fake.stats

    assert result.returncode == 0, result.stderr
    assert_clean(result)
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    assert manifest["status"].tolist() == ["ok"] * SCENES
    report = json.loads((tmp_path / "out" / "run.json").read_text())
    assert stats.violations == []
    assert stats.injected_faults >= 0.2 * 2 * SCENES, stats.injected_faults
    paid_twice = report["possibly_paid_twice"]
    assert len(paid_twice) == stats.duplicate_jobs <= 15, paid_twice
    assert set(paid_twice) <= set(manifest["scene_id"]), "scene ids, once per re-send"
    assert stats.jobs == 2 * SCENES + stats.duplicate_jobs
    assert stats.generation_requests == 2 * SCENES + stats.injected_faults
    assert stats.polls >= SCENES and stats.result_fetches > 0  # every SVD job outlasted 1 s
    assert report["api_calls"] == stats.total_requests, stats.requests_by_kind
