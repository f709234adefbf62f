"""The exception hierarchy every layer raises and the command line turns into exit codes.

    StoryboardError                 base of everything below
    ├── ConfigurationError          bad usage, configuration or storyboard: exit 2
    ├── FatalServiceError           the service refuses us (bad key, no credits): exit 1
    │   └── ModelUnavailableError   the model is retired or unknown to this account
    ├── TransientServiceError       worth retrying (429, 5xx, timeouts, dropped connections)
    ├── StorageError                a bucket or folder cannot be read or written: exit 1
    ├── FfmpegError                 ffmpeg exited with an error
    ├── RunCancelledError           the run was cancelled while it waited for reviewers: exit 1
    ├── TargetBusyError             another run is writing the same TARGET: exit 1
    └── SceneError                  one scene cannot be made; the others go on
        ├── AudioError              the recording cannot be read or decoded
        ├── GenerationError         the backend rejected this scene's request
        │   └── OutcomeUnknownError a sent request's answer was lost: never re-sent blindly
        └── ContentFilteredError    the backend filtered the prompt or the image

Messages are one line, meant for the user, and never contain secrets. A full disk surfaces
as the OSError it is (it can strike in any write, Prefect's own included); `is_disk_full`
tells it apart so the command line can explain it in one line and exit 1.
"""

from __future__ import annotations

import errno


class StoryboardError(Exception):
    """Base class of every error the pipeline raises on purpose.

    `api_calls` counts the paid generation requests sent before the error (retries included).
    """

    api_calls: int = 0
    resent: int = 0
    """Of those, requests sent again after their answer was lost (each may be paid twice)."""


class ConfigurationError(StoryboardError):
    """Bad command-line usage, configuration file or storyboard folder."""


class FatalServiceError(StoryboardError):
    """The generation service refuses every request (bad key, exhausted credits)."""


class ModelUnavailableError(FatalServiceError):
    """The service does not know the model (retired, or not offered to this account): every
    request for it would fail the same way."""

    def __init__(self, message: str, model: str = "") -> None:
        super().__init__(message)
        self.model = model


class TransientServiceError(StoryboardError):
    """A failure that may go away when the same request is sent again."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageError(StoryboardError):
    """A bucket or folder cannot be read or written (credentials, permissions, missing)."""


class FfmpegError(StoryboardError):
    """ffmpeg exited with an error."""


class RunCancelledError(StoryboardError):
    """The flow run was cancelled (in the Prefect UI) while it paused for an approval."""


class TargetBusyError(StoryboardError):
    """Another run holds the TARGET's lease: two runs never write one target at once."""


class SourceChangedError(StoryboardError):
    """The storyboard's folder changed while it was rendered (a copy that paused and went on):
    the render is not published as if the folder were settled; it is rendered again."""


class SceneError(StoryboardError):
    """One scene cannot be produced; the storyboard goes on without it."""


class AudioError(SceneError):
    """The recording is empty, truncated or not audio."""


class GenerationError(SceneError):
    """The backend rejected this scene's request for good."""


class StopRequested(StoryboardError):
    """The command was told to stop (SIGINT, SIGTERM): raised at the next step of a long call
    (`clients/stopping.py`), so the run ends within a step."""


class OutcomeUnknownError(GenerationError):
    """A request was sent but its answer was lost (a read timeout, a dropped connection): the
    service may have started a paid job. `resendable` when the request itself may be sent
    again (within `generation.resend_unknown_outcomes`); never for a job that was accepted and
    is being polled."""

    def __init__(self, message: str, *, resendable: bool = False) -> None:
        super().__init__(message)
        self.resendable = resendable


class ContentFilteredError(SceneError):
    """The backend's safety filter refused the prompt or its result."""


def is_disk_full(error: BaseException | None) -> bool:
    """Whether `error` is the operating system saying there is no room left to write."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def exception_reason(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type when it has none), for one-line
    errors."""
    text = str(exc)
    return text.splitlines()[0][:limit] if text.strip() else type(exc).__name__
