"""Ingest: what it costs to notice one changed storyboard in a large bucket, polling against
events.

    .venv/bin/python -m benchmarks.ingest [--folders 1000] [--per-folder 20] [--settle 10]

Fills a bucket on moto's S3 server (loopback) with `--folders` storyboard folders of
`--per-folder` tiny recordings each, all rendered before (each target's `run.json` holds its
folder's fingerprint), then adds one recording to one folder and measures, for both ways in:

- polling: one `storyboard watch --once` pass (what a watcher does every interval): the S3
  requests it sends, the bucket-wide LISTs among them, and the seconds from the upload to the
  render's flow run (a watcher's own wait for its next pass, up to one interval, comes on top);
- events: `storyboard listen` with the bucket notifying an SQS queue: the S3 requests sent and
  bucket-wide LISTs from the upload until the `on-upload` flow run is created, and the seconds
  that took (goal: no bucket LIST, under `--settle` + 10 s).

Both render with the draft backend and report to a Prefect server started here (default
settings: proactive triggers evaluated every 5 s, the runner polling every 10 s).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from testkit.servers import deployment_runs, free_port, launch_prefect_server
from testkit.sources import DEMO_DIR

STORYBOARD = str(Path(sys.executable).with_name("storyboard"))
BUCKET, RENDERS = "inbox", "renders"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class RequestLog(logging.Handler):
    """moto's server logs each request it answers (werkzeug): counted here, by kind."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if '"POST / ' in line:
            self.counts["sqs"] += 1
        elif "list-type=2" in line:
            self.counts["s3"] += 1
            bucket_wide = f"GET /{BUCKET}?" in line and "prefix=folder_" not in line
            self.counts["bucket LIST" if bucket_wide else "folder LIST"] += 1
        elif '"GET /' in line or '"PUT /' in line or '"HEAD /' in line or '"DELETE /' in line:
            self.counts["s3"] += 1

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        """The requests answered while the block runs."""
        before = Counter(self.counts)
        seen: Counter[str] = Counter()
        yield seen
        seen.update(self.counts - before)


def tiny_wav() -> bytes:
    """0.1 s of silence: a folder's stand-in recordings, never rendered."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0" * 1600)
    return buffer.getvalue()


def fill_bucket(s3: Any, folders: int, per_folder: int) -> None:
    """The storyboards, and a `run.json` in each one's target as a past render left it."""
    from clients.storage import open_storage
    from flows.watch import storyboard_folders

    body = tiny_wav()
    keys = [f"folder_{f:04d}/scene_{s:02d}.wav" for f in range(folders) for s in range(per_folder)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=body), keys))
    found, _ = storyboard_folders(open_storage(f"s3://{BUCKET}/").list(recursive=True))

    def rendered(folder: Any) -> None:
        record = json.dumps({"source_fingerprint": folder.fingerprint}).encode()
        s3.put_object(Bucket=RENDERS, Key=f"{folder.path}/run.json", Body=record)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(rendered, found))


@dataclass(frozen=True)
class Measured:
    requests: Counter[str]
    seconds_to_flow_run: float


def _first_subflow_s(output: str, day: str) -> float:
    """The time (epoch seconds) of the render's flow run beginning, from the command's log."""
    for line in output.splitlines():
        if "Beginning subflow run" in line or "Beginning flow run" in line:
            return datetime.fromisoformat(f"{day}T{line[:12]}").timestamp()
    raise SystemExit(f"no flow run began:\n{output[-3000:]}")


def poll_once(s3: Any, log: RequestLog, env: dict[str, str]) -> Measured:
    """One watcher pass after one recording was added to one folder."""
    with log.counting() as seen:
        s3.upload_file(str(DEMO_DIR / "dawn.ogg"), BUCKET, "folder_0500/dawn.ogg")
        uploaded = time.time()
        command = [STORYBOARD, "watch", f"s3://{BUCKET}/", "--out", f"s3://{RENDERS}/"]
        command += ["--once", "--settle", "0", "--backend", "draft"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if "1 rendered" not in done.stdout:
        raise SystemExit(f"the pass did not render the folder:\n{done.stdout}{done.stderr[-3000:]}")
    began = _first_subflow_s(done.stderr + done.stdout, time.strftime("%Y-%m-%d"))
    return Measured(seen, began - uploaded)


def notify_queue(s3: Any, sqs: Any) -> str:
    queue = sqs.create_queue(QueueName="drops")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    configuration = {
        "QueueConfigurations": [
            {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
        ]
    }
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=configuration)
    return str(queue)


def _upload_runs(api: str) -> list[dict[str, Any]]:
    return deployment_runs(api, "storyboard-upload/on-upload")


def _wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"waited {seconds:g} s for {what} in vain")
        time.sleep(0.2)


def listen_once(
    s3: Any, sqs: Any, log: RequestLog, env: dict[str, str], settle_s: float, folder: Path
) -> Measured:
    """`storyboard listen` running; one recording added to one folder."""
    queue, output = notify_queue(s3, sqs), folder / "listen.log"
    command = [STORYBOARD, "listen", queue, "--source", f"s3://{BUCKET}/"]
    command += ["--out", f"s3://{RENDERS}/", "--settle", f"{settle_s:g}", "--backend", "draft"]
    with output.open("w") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        _wait_for(lambda: "on-upload" in output.read_text(), 120, "the deployments")
        with log.counting() as seen:
            s3.upload_file(str(DEMO_DIR / "night.ogg"), BUCKET, "folder_0700/night.ogg")
            uploaded = time.time()
            _wait_for(lambda: _upload_runs(env["PREFECT_API_URL"]), 120, "the flow run")
        created = _upload_runs(env["PREFECT_API_URL"])[0]["created"]
        seconds = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() - uploaded
        return Measured(seen, seconds)
    finally:
        process.terminate()
        process.wait(timeout=60)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=1000)
    parser.add_argument("--per-folder", type=int, default=20)
    parser.add_argument("--settle", type=float, default=10.0)
    return parser.parse_args()


def main() -> None:
    from moto.server import ThreadedMotoServer

    arguments = parse_arguments()
    log = RequestLog()
    logging.getLogger("werkzeug").addHandler(log)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    logging.getLogger("werkzeug").propagate = False  # counted, not printed
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="ingest-") as name:
        folder = Path(name)
        server, api, _ = launch_prefect_server(folder / "prefect")
        env = {**os.environ, **AWS, "AWS_DEFAULT_REGION": "us-east-1"}
        env |= {"AWS_ENDPOINT_URL": endpoint, "PREFECT_API_URL": api}
        env["STORYBOARD_CACHE_DIR"] = str(folder / "cache")
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        s3, sqs = (
            boto3.client("s3", endpoint_url=endpoint),
            boto3.client("sqs", endpoint_url=endpoint),
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=RENDERS)
        started = time.perf_counter()
        fill_bucket(s3, arguments.folders, arguments.per_folder)
        objects = arguments.folders * arguments.per_folder
        filled_s = time.perf_counter() - started
        print(f"{objects} objects in {arguments.folders} folders ({filled_s:.0f} s to fill)")
        try:
            polled = poll_once(s3, log, env)
            evented = listen_once(s3, sqs, log, env, arguments.settle, folder)
        finally:
            server.terminate()
            server.wait(timeout=30)
            moto.stop()
    report(polled, evented, arguments.settle)


def report(polled: Measured, evented: Measured, settle_s: float) -> None:
    rows = (("polling: one pass", polled), ("events: until the run", evented))
    for label, measured in rows:
        requests = measured.requests
        print(
            f"{label:22} S3 requests {requests['s3']:6d}  bucket LISTs {requests['bucket LIST']:4d}"
            f"  folder LISTs {requests['folder LIST']:3d}  SQS requests {requests['sqs']:3d}"
            f"  upload to flow run {measured.seconds_to_flow_run:5.1f} s"
        )
    print(
        f"goal for events: no bucket LIST ({evented.requests['bucket LIST']}), "
        f"flow run within settle + 10 s = {settle_s + 10:g} s "
        f"({evented.seconds_to_flow_run:.1f} s). The pass's requests include its render's; a "
        "watcher also waits up to one --interval for its next pass."
    )


if __name__ == "__main__":
    main()
