"""The one error a request can end with: an HTTP status and a message for the person."""

from __future__ import annotations


class StudioError(Exception):
    """A request refused, with its HTTP status and a one-line message for the reviewer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(what: str) -> StudioError:
    return StudioError(404, f"{what} not found")
