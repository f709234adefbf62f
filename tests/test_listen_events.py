"""S3 notifications read as S3 writes them, and the Prefect events `storyboard listen` makes of
them (the whole loop, with moto and a Prefect server, is in tests/test_listen.py)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from prefect.events import Event

from clients.notifications import ObjectChange, QueueMessage, read_notification
from domain.errors import ConfigurationError, StorageError, TransientServiceError
from flows.deployments import upload_trigger
from flows.listening import ListenedSource, Listener, folder_event
from flows.uploads import locate
from tests.helpers import run_cli

SOURCES = [ListenedSource.parse("s3://inbox/projects"), ListenedSource.parse("s3://other/")]


def _record(key: str, name: str = "ObjectCreated:Put", bucket: str = "inbox") -> dict:
    return {
        "eventName": name,
        "eventTime": "2026-12-06T10:00:00.000Z",
        "s3": {
            "bucket": {"name": bucket},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": 5,
                "eTag": "abc",
                "sequencer": "0A",
            },
        },
    }


def test_keys_are_decoded_as_s3_encodes_them_directly_or_through_sns() -> None:
    key = "projects/a lion+1 é/dawn 2.ogg"
    body = json.dumps({"Records": [_record(key), _record(key, "ObjectRemoved:Delete")]})
    message = read_notification("r1", body)
    assert [(c.key, c.kind) for c in message.changes] == [(key, "created"), (key, "removed")]
    through_sns = read_notification("r2", json.dumps({"Type": "Notification", "Message": body}))
    assert through_sns.changes == message.changes
    assert read_notification("r3", json.dumps({"Event": "s3:TestEvent"})).test_event
    assert read_notification("r4", "not json").unreadable
    assert (
        read_notification("r5", json.dumps({"Records": [{"eventName": "s3:Replication"}]})).changes
        == ()
    )


def _change(key: str, bucket: str = "inbox", kind: str = "created") -> ObjectChange:
    return ObjectChange(bucket, key, kind, "2026-12-06T10:00:00Z", 5, "abc", "0A")  # type: ignore[arg-type]


def test_a_recording_or_storyboard_file_becomes_an_event_on_its_folder() -> None:
    made = folder_event(_change("projects/a lion+1 é/dawn.ogg"), SOURCES)
    assert isinstance(made, Event)
    assert made.event == "storyboard.recording.created"
    assert made.resource.id == "s3://inbox/projects/a lion+1 é/"
    assert made.payload["folder"] == "a lion+1 é" and made.payload["key"].endswith("dawn.ogg")
    removed = folder_event(_change("projects/x/storyboard.yaml", kind="removed"), SOURCES)
    assert isinstance(removed, Event) and removed.event == "storyboard.recording.removed"
    at_the_root = folder_event(_change("scene.wav", bucket="other"), SOURCES)
    assert isinstance(at_the_root, Event) and at_the_root.resource.id == "s3://other/"
    reference = folder_event(_change("projects/x/leo.png"), SOURCES)
    assert isinstance(reference, Event), "a character's new reference re-renders its scenes"
    again = folder_event(_change("projects/a lion+1 é/dawn.ogg"), SOURCES)
    assert isinstance(again, Event) and again.id == made.id, "a redelivery is the same event"


@pytest.mark.parametrize(
    ("key", "bucket", "why"),
    [
        ("elsewhere/x/dawn.ogg", "inbox", "outside every listened source"),
        ("projects/x/notes.txt", "inbox", "not a recording"),
        ("projects/.hidden/dawn.ogg", "inbox", "outside every listened source"),
        ("projects/x/dawn.ogg", "third", "outside every listened source"),
    ],
)
def test_other_keys_are_ignored_with_one_line(key: str, bucket: str, why: str) -> None:
    made = folder_event(_change(key, bucket), SOURCES)
    assert isinstance(made, str) and why in made and "\n" not in made


@dataclass
class _Queue:
    messages: list[QueueMessage]
    deleted: list[str] = field(default_factory=list)

    def delete(self, receipt: str) -> None:
        self.deleted.append(receipt)


@dataclass
class _Sink:
    refuse: bool = False
    sent: list[Event] = field(default_factory=list)

    def send(self, events: list[Event]) -> None:
        if self.refuse:
            raise TransientServiceError("503")
        self.sent.extend(events)


def test_a_message_is_deleted_only_once_its_events_were_accepted() -> None:
    message = QueueMessage("r1", (_change("projects/a/dawn.ogg"), _change("projects/a/x.txt")))
    queue, lines = _Queue([message]), []
    refusing = Listener(queue, _Sink(refuse=True), SOURCES, lines.append)  # type: ignore[arg-type]
    with pytest.raises(TransientServiceError):
        refusing.take(message)
    assert queue.deleted == []
    sink = _Sink()
    Listener(queue, sink, SOURCES, lines.append).take(message)  # type: ignore[arg-type]
    assert queue.deleted == ["r1"] and len(sink.sent) == 1
    assert any("x.txt" in line for line in lines)


def test_the_trigger_waits_for_a_quiet_folder_and_renders_the_last_events_folder() -> None:
    with pytest.raises(ConfigurationError, match="at least 10 s"):
        upload_trigger(5.0)
    trigger = upload_trigger(12.0)
    assert trigger.posture == "Proactive" and trigger.threshold == 1
    assert trigger.after == trigger.expect == {"storyboard.recording.*"}
    assert trigger.for_each == {"prefect.resource.id"}
    assert trigger.within.total_seconds() == 12.0
    assert trigger.parameters == {"folder": "{{ event.resource.id }}"}


def test_the_upload_flow_renders_only_folders_under_its_sources() -> None:
    sources = ["s3://inbox/projects/", "s3://other/"]
    assert locate("s3://inbox/projects/a lion/", sources) == ("s3://inbox/projects/", "a lion")
    assert locate("s3://other/", sources) == ("s3://other/", "")
    with pytest.raises(ConfigurationError):
        locate("s3://elsewhere/a/", sources)
    with pytest.raises(ConfigurationError):
        locate("s3://inbox/projects/../secrets/", sources)


def test_the_listener_outlives_a_failing_queue_and_stops_when_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("flows.listening.RETRY_AFTER_S", 0.0)
    stop = threading.Event()
    answers: list[Any] = [
        StorageError("the queue is away"),
        RuntimeError("a bug in a message"),
        [QueueMessage("r1", (_change("projects/a/dawn.ogg"),))],
    ]

    @dataclass
    class FlakyQueue(_Queue):
        def receive(self, wait_s: int) -> list[QueueMessage]:
            if not answers:
                stop.set()
                return []
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return list(answer)

    queue, sink, lines = FlakyQueue([]), _Sink(), []
    Listener(queue, sink, SOURCES, lines.append).listen(stop, wait_s=0)  # type: ignore[arg-type]
    assert queue.deleted == ["r1"] and len(sink.sent) == 1
    assert any("the queue is away" in line for line in lines)
    assert any("RuntimeError: a bug in a message" in line for line in lines)


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--source", "s3://b/p/", "--settle", "3"], "at least 10 s"),
        (["--source", "/a/local/folder"], "takes s3://bucket/prefix/ sources"),
        (["--source", "s3://b/p/", "--no-server"], "needs a Prefect server"),
    ],
)
def test_listen_refuses_bad_usage_in_one_line_before_any_work(
    arguments: list[str], said: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if "--no-server" in arguments:
        arguments = [a for a in arguments if a != "--no-server"]
    else:
        env["PREFECT_API_URL"] = "http://127.0.0.1:9/api"  # never reached
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/drops"
    result = run_cli(["listen", queue, *arguments, "--out", str(tmp_path / "out")], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1
