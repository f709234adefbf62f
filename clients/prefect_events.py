"""Prefect events, sent to the server `PREFECT_API_URL` names and acknowledged by it.

`prefect.events.emit_event` queues an event and returns before any server has it, so a
message taken off a queue on its word could be lost. `PrefectEvents.send` posts a batch to
`POST /api/events` through Prefect's own client (its authentication and retries) and returns
only once the server answered 204; anything else is a `TransientServiceError`, and the caller
keeps what it was going to acknowledge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from prefect.events import Event

from domain.errors import TransientServiceError


class EventSink(Protocol):
    """Where events go: `send` returns once they are accepted, and raises otherwise."""

    def send(self, events: Sequence[Event]) -> None: ...


class PrefectEvents:
    """The events API of the Prefect server this process reports to."""

    def send(self, events: Sequence[Event]) -> None:
        if not events:
            return
        import httpx
        from prefect.client.orchestration import get_client
        from prefect.exceptions import PrefectHTTPStatusError

        body = [event.model_dump(mode="json") for event in events]
        try:
            with get_client(sync_client=True) as client:
                response = client.request("POST", "/events", json=body)
        except (PrefectHTTPStatusError, httpx.HTTPError) as exc:
            raise TransientServiceError(f"the Prefect server refused the events: {exc}") from None
        if response.status_code != 204:
            raise TransientServiceError(
                f"the Prefect server answered {response.status_code} to the events, not 204"
            )
