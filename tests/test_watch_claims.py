"""Watcher claims (flows/watch.py), on a local folder and on S3 (moto server): a claim left by
a killed watcher is taken over once its heartbeat is stale, a live one still blocks, a claim
stays alive through a long render, and an interrupted pass releases its claim.

The claim helpers are tested directly; the `slow` tests run the real `storyboard-watch` flow,
reporting to the tests' Prefect server, with the storyboard render replaced by a stub, so
nothing is transcribed or generated."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

import clients.lease
import flows.watch
from clients.lease import Lease, claim_render
from clients.storage import Storage, open_storage
from configs.settings import load_settings
from domain.layout import CLAIMS_FOLDER
from flows.watch import WatchReport, storyboard_folders, watch_pass
from tests.helpers import DEMO_DIR

FOLDER = "alpha"


class StubRender:
    """Stands in for the `storyboard` flow: records each render and runs `during` inside it."""

    def __init__(self, during: Callable[[], None] | None = None) -> None:
        self.during = during
        self.sources: list[str] = []

    def with_options(self, **_: Any) -> StubRender:
        return self

    def __call__(self, **parameters: Any) -> SimpleNamespace:
        self.sources.append(parameters["source"])
        if self.during is not None:
            self.during()
        return SimpleNamespace(report=SimpleNamespace(scenes={"ok": 1}))


@pytest.fixture(params=["local", "s3"])
def drop(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A SOURCE holding one storyboard folder with one recording, and an empty TARGET."""
    if request.param == "local":
        (tmp_path / "drop" / FOLDER).mkdir(parents=True)
        shutil.copy(DEMO_DIR / "dawn.ogg", tmp_path / "drop" / FOLDER / "1.ogg")
        return str(tmp_path / "drop"), str(tmp_path / "rendered")
    endpoint = request.getfixturevalue("s3_endpoint")
    s3: Any = boto3.client("s3", endpoint_url=endpoint)
    source, target = f"in-{uuid.uuid4().hex[:8]}", f"out-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=source)
    s3.create_bucket(Bucket=target)
    s3.upload_file(str(DEMO_DIR / "dawn.ogg"), source, f"projects/{FOLDER}/1.ogg")
    return f"s3://{source}/projects/", f"s3://{target}/rendered/"


@pytest.fixture
def reporting_to_the_test_server(prefect_api: str) -> Iterator[None]:
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        yield
        APILogWorker.drain_all(timeout=5)


def fingerprint_of(source: str) -> str:
    (folder,), _ = storyboard_folders(open_storage(source).list(recursive=True))
    return folder.fingerprint


def destination(target: str) -> Storage:
    return open_storage(target).child(FOLDER)


def read_claim(target: str, fingerprint: str) -> dict[str, Any] | None:
    body = destination(target).read_bytes(f"{CLAIMS_FOLDER}/{fingerprint}")
    return None if body is None else dict(json.loads(body))


def write_claim(target: str, fingerprint: str, heartbeat: float) -> None:
    """A claim as another watcher writes it, last renewed at `heartbeat`."""
    owner = "other-host:4242:0badc0de"
    body = {"owner": owner, "renewed_at": heartbeat, "expires": heartbeat + 120}
    destination(target).write_bytes(f"{CLAIMS_FOLDER}/{fingerprint}", json.dumps(body).encode())


def one_pass(source: str, target: str, stub: StubRender, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(flows.watch, "storyboard", stub)
    return watch_pass(source=source, target=target, settings=load_settings(None), settle_s=0)


def test_a_claim_whose_heartbeat_is_stale_is_taken_over_and_a_live_one_blocks(
    drop: tuple[str, str],
) -> None:
    _, target = drop
    write_claim(target, "f" * 64, heartbeat=time.time() - 600)
    assert claim_render(destination(target), "f" * 64) is not None, "the killed watcher's claim"
    assert (read_claim(target, "f" * 64) or {})["owner"] != "other-host:4242:0badc0de"

    write_claim(target, "e" * 64, heartbeat=time.time() - 30)
    assert claim_render(destination(target), "e" * 64) is None, "a watcher that renewed 30 s ago"
    assert claim_render(destination(target), "f" * 64) is None, "the claim just taken over"


def test_a_held_claim_is_renewed_and_released_however_the_holder_stops(
    drop: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, target = drop
    monkeypatch.setattr(clients.lease, "CLAIM_LIFETIME_S", 0.4)
    render_claim = claim_render(destination(target), "f" * 64)
    assert render_claim is not None
    with pytest.raises(KeyboardInterrupt), render_claim.held():
        time.sleep(1.2)
        now, held = time.time(), read_claim(target, "f" * 64) or {}
        assert held["expires"] > now, "three lifetimes in, the claim is still alive"
        assert claim_render(destination(target), "f" * 64) is None, "and still blocks the others"
        raise KeyboardInterrupt
    assert read_claim(target, "f" * 64) is None, "Ctrl-C released it"
    assert claim_render(destination(target), "f" * 64) is not None


@pytest.mark.slow
@pytest.mark.usefixtures("reporting_to_the_test_server")
def test_a_pass_takes_over_the_claim_of_a_killed_watcher(
    drop: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = drop
    write_claim(target, fingerprint_of(source), heartbeat=time.time() - 600)
    stub = StubRender()
    report: WatchReport = one_pass(source, target, stub, monkeypatch)
    assert (report.rendered, report.claimed_elsewhere) == ([FOLDER], []), report
    assert len(stub.sources) == 1
    assert read_claim(target, fingerprint_of(source)) is None, "released after the render"


@pytest.mark.slow
@pytest.mark.usefixtures("reporting_to_the_test_server")
def test_a_pass_interrupted_during_a_render_releases_its_claim(
    drop: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = drop
    fingerprint = fingerprint_of(source)

    def interrupt() -> None:
        assert read_claim(target, fingerprint) is not None, "claimed while rendering"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        one_pass(source, target, StubRender(interrupt), monkeypatch)
    assert read_claim(target, fingerprint) is None, "an interrupted pass releases its claim"
    report: WatchReport = one_pass(source, target, StubRender(), monkeypatch)
    assert report.rendered == [FOLDER], "the very next pass renders"


def test_a_lease_of_a_process_gone_from_this_machine_is_taken_over_at_once(
    tmp_path: Path,
) -> None:
    """A run killed outright here (`kill -9`) must not hold its target for two minutes; a
    holder that still runs, or one on another machine, keeps its lease until it expires."""
    store = open_storage(str(tmp_path))
    finished = subprocess.Popen(["true"])
    finished.wait()
    running = subprocess.Popen(["sleep", "30"])
    try:
        for owner, taken in (
            (f"{socket.gethostname()}:{finished.pid}:0badc0de (flow run gone)", True),
            (f"{socket.gethostname()}:{running.pid}:0badc0de (flow run alive)", False),
            (f"other-host:{finished.pid}:0badc0de", False),
        ):
            body = {"owner": owner, "renewed_at": time.time(), "expires": time.time() + 120}
            store.write_bytes("run.lease", json.dumps(body).encode())
            assert Lease(store, "run.lease").try_acquire() is taken, owner
            store.delete("run.lease")
    finally:
        running.kill()
        running.wait()
