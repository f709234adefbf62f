"""S3 event notifications, read from the SQS queue a bucket sends them to.

A bucket configured to notify a queue (README "Events instead of listing") sends one message
per change, `ObjectCreated:*` or `ObjectRemoved:*`, with the object's key URL-encoded as S3
writes it (`+` for a space, `%2F`, UTF-8 escapes), its size and ETag; configuring the
notification first sends an `s3:TestEvent`. A message can arrive twice, late or out of order.
Messages that SNS fanned out to the queue carry the notification in their `Message`.

`NotificationQueue` long-polls the queue and deletes a message only when asked, once whatever
it was turned into has been accepted elsewhere; until then SQS delivers it again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus, urlparse

from domain.errors import StorageError

ChangeKind = Literal["created", "removed"]


@dataclass(frozen=True)
class ObjectChange:
    """One object created or removed in a bucket, its key decoded."""

    bucket: str
    key: str
    kind: ChangeKind
    occurred: str
    """When S3 says it happened (ISO 8601)."""
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None
    """S3's order of the changes to one key (hexadecimal, compared by length then value)."""


@dataclass(frozen=True)
class QueueMessage:
    """One message from the queue: the changes it reports (none for a test event)."""

    receipt: str
    changes: tuple[ObjectChange, ...]
    test_event: bool = False
    unreadable: str = ""
    """Why the body is not an S3 notification, when it is not."""


def _change(record: dict[str, Any]) -> ObjectChange | None:
    name = str(record.get("eventName", ""))
    kind: ChangeKind | None = (
        "created"
        if name.startswith("ObjectCreated:")
        else "removed"
        if name.startswith("ObjectRemoved:")
        else None
    )
    s3 = record.get("s3", {})
    if kind is None or not isinstance(s3, dict):
        return None
    stored = s3.get("object", {})
    return ObjectChange(
        bucket=str(s3.get("bucket", {}).get("name", "")),
        key=unquote_plus(str(stored.get("key", ""))),
        kind=kind,
        occurred=str(record.get("eventTime", "")),
        size=stored.get("size"),
        etag=stored.get("eTag") or stored.get("etag"),
        sequencer=stored.get("sequencer"),
    )


def read_notification(receipt: str, body: str) -> QueueMessage:
    """The changes a message's body reports: an S3 notification, directly or through SNS."""
    try:
        document = json.loads(body)
        if isinstance(document, dict) and document.get("Type") == "Notification":
            document = json.loads(document.get("Message", ""))
    except (json.JSONDecodeError, TypeError):
        return QueueMessage(receipt, (), unreadable="not JSON")
    if not isinstance(document, dict):
        return QueueMessage(receipt, (), unreadable="not an S3 notification")
    if document.get("Event") == "s3:TestEvent":
        return QueueMessage(receipt, (), test_event=True)
    records = document.get("Records")
    if not isinstance(records, list):
        return QueueMessage(receipt, (), unreadable="not an S3 notification")
    changes = (_change(record) for record in records if isinstance(record, dict))
    return QueueMessage(receipt, tuple(change for change in changes if change is not None))


def _region_of(queue_url: str) -> str | None:
    """The region in an AWS queue URL (`https://sqs.eu-west-1.amazonaws.com/...`)."""
    host = urlparse(queue_url).hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) > 3 and parts[0] == "sqs" else None


class NotificationQueue:
    """An SQS queue of S3 notifications, long-polled."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        if not queue_url.startswith(("https://", "http://")):
            raise StorageError(f"{queue_url}: not a queue URL (https://sqs.REGION...)")
        self.queue_url = queue_url
        self._client = client or _sqs_client(queue_url)

    def check(self) -> None:
        """StorageError unless the queue can be reached with these credentials."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot reach the queue {self.queue_url}: {exc}") from None

    def receive(self, wait_s: int = 20, visibility_s: int = 60) -> list[QueueMessage]:
        """Up to ten messages, waiting at most `wait_s` for the first; each is hidden from
        other readers for `visibility_s`, then delivered again unless deleted."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait_s,
                VisibilityTimeout=visibility_s,
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot read the queue {self.queue_url}: {exc}") from None
        return [
            read_notification(message["ReceiptHandle"], message.get("Body", ""))
            for message in answer.get("Messages", [])
        ]

    def delete(self, receipt: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot delete a message from {self.queue_url}: {exc}") from None


def _sqs_client(queue_url: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=15)
    return boto3.client(
        "sqs",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=_region_of(queue_url) or os.environ.get("AWS_DEFAULT_REGION") or None,
        config=config,
    )
