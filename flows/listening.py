"""`storyboard listen`: S3 notifications in, Prefect events out.

Each notification on the queue (`clients/notifications.py`) that names an input of a
storyboard under one of the listened sources (a recording, its `storyboard.yaml` or a file of
the kinds it names: `tasks/source_state.py:is_input`) becomes one Prefect event,
`storyboard.recording.created` or `storyboard.recording.removed`, whose resource is the
storyboard folder's URI; the `on-upload` deployment's trigger (`flows/deployments.py`) runs a
render of that folder once its events have been quiet for the settle time. A message is
deleted from the queue only after the server accepted its events, so a failure on the way
leaves it to be delivered again. A duplicate or late notification costs nothing: the render
is keyed by the folder's content.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from prefect.events import Event
from prefect.events.schemas.events import Resource

from clients.notifications import NotificationQueue, ObjectChange, QueueMessage
from clients.prefect_events import EventSink
from clients.storage import is_s3, safe_name
from domain.errors import ConfigurationError, StorageError, TransientServiceError
from domain.layout import STORYBOARD_FILE
from flows.watch import folder_of, join_location
from tasks.source_state import is_input

EVENT_PREFIX = "storyboard.recording."
EVENTS = {"created": f"{EVENT_PREFIX}created", "removed": f"{EVENT_PREFIX}removed"}
RETRY_AFTER_S = 5.0
"""How long the listener waits after the queue or the server failed, before asking again."""


@dataclass(frozen=True)
class ListenedSource:
    """An S3 prefix whose storyboard folders are rendered when their files change."""

    bucket: str
    prefix: str
    """"" or ending with "/"."""

    @classmethod
    def parse(cls, uri: str) -> ListenedSource:
        if not is_s3(uri):
            raise ConfigurationError(f"{uri}: storyboard listen takes s3://bucket/prefix/ sources")
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise ConfigurationError(f"{uri}: no bucket named")
        return cls(bucket, prefix.strip("/") + "/" if prefix.strip("/") else "")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def folder_of(self, change: ObjectChange) -> tuple[str, str] | None:
        """The storyboard folder (relative, "" for the source) and file name of a changed
        object under this source; None for an object elsewhere or in a hidden folder."""
        if change.bucket != self.bucket or not change.key.startswith(self.prefix):
            return None
        return folder_of(change.key[len(self.prefix) :])


def folder_event(change: ObjectChange, sources: Sequence[ListenedSource]) -> Event | str:
    """The event a change makes, or in one line why it makes none."""
    where = f"s3://{change.bucket}/{change.key}"
    placed = next(
        ((source, place) for source in sources if (place := source.folder_of(change))), None
    )
    if placed is None:
        return f"ignored {where}: outside every listened source"
    source, (folder, name) = placed
    if not is_input(name):
        return f"ignored {where}: not a recording, {STORYBOARD_FILE} or a file it names"
    try:
        if folder:
            safe_name(folder)
    except StorageError:
        return f"ignored {where}: its folder's name would leave the source"
    folder_uri = join_location(source.uri, folder)
    version = change.sequencer or change.etag or change.occurred
    return Event(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"{where}#{change.kind}#{version}"),
        event=EVENTS[change.kind],
        resource=Resource(
            {
                "prefect.resource.id": folder_uri,
                "prefect.resource.name": PurePosixPath(folder).name or source.uri,
            }
        ),
        payload={
            "bucket": change.bucket,
            "key": change.key,
            "size": change.size,
            "etag": change.etag,
            "sequencer": change.sequencer,
            "s3_event_time": change.occurred,
            "source": source.uri,
            "folder": folder,
        },
    )


@dataclass
class Listener:
    """Reads the queue, sends each message's events, then deletes the message."""

    queue: NotificationQueue
    sink: EventSink
    sources: Sequence[ListenedSource]
    say: Callable[[str], None]

    def take(self, message: QueueMessage) -> None:
        """One message: its events accepted by the server, then the message deleted."""
        if message.unreadable:
            self.say(f"ignored a queue message: {message.unreadable}")
        if message.test_event:
            self.say("ignored S3's test event (the bucket's notifications reach the queue)")
        events = []
        for change in message.changes:
            made = folder_event(change, self.sources)
            if isinstance(made, str):
                self.say(made)
            else:
                events.append(made)
        self.sink.send(events)
        self.queue.delete(message.receipt)

    def listen(self, stop: threading.Event, wait_s: int = 10) -> None:
        """Until `stop` is set: each message as it arrives; a queue or server that fails is
        asked again a few seconds later (the message is delivered again meanwhile)."""
        while not stop.is_set():
            try:
                for message in self.queue.receive(wait_s):
                    self.take(message)
            except (StorageError, TransientServiceError) as exc:
                self.say(f"listen: {exc}; trying again in {RETRY_AFTER_S:g} s")
                stop.wait(RETRY_AFTER_S)
            except Exception as exc:  # the service outlives one bad message
                self.say(f"listen: unexpected {type(exc).__name__}: {exc}; going on")
                stop.wait(RETRY_AFTER_S)
