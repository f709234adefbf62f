"""Answering a paused image approval (`flows/approval_form.py`) the way the Prefect UI's Resume
form does: `POST {api}/flow_runs/{id}/resume` with `run_input`, on the Prefect API the run
talks to (its server, or the temporary one a plain `storyboard run` starts).

The run is first asked whether it still waits at that very pause: whoever answers first (the
Prefect UI, another reviewer, the studio) wins, and a later answer is told why it came too
late instead of resuming a later round or failing a run whose pause timed out (the server
fails a run resumed past its pause's deadline). Nothing is read from files here: the caller
hands over where the run listens and the answers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from domain.errors import ConfigurationError

TIMEOUT_S = 10.0
ALREADY_ANSWERED = "already answered in the Prefect UI or by another reviewer"
PAUSE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,100}")
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED", "CANCELLING"})

SceneAnswers = Mapping[str, Mapping[str, str]]
"""By scene id: {"decision": "approve"|"reject"|"skip", "note": ..., "prompt": ...}."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    ANSWERED = "answered"
    """Someone answered this pause first."""
    TIMED_OUT = "timed out"
    ENDED = "ended"
    """The run is over (or the API does not know it)."""
    NOT_YET = "not yet"
    """The run has not started waiting at this pause yet (its form is not saved yet)."""
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    """The API refused the answer itself (it does not fit the run's form)."""


@dataclass(frozen=True)
class ResumeResult:
    """What became of an answer: its outcome and one line for the person."""

    outcome: Outcome
    reason: str

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


NOT_WAITING_YET = ResumeResult(
    Outcome.NOT_YET, "the run does not wait for this answer yet: try again in a moment"
)


def check_api_url(api_url: str) -> str:
    """`api_url` without its trailing slash; ConfigurationError unless it is http(s)."""
    parts = urlsplit(api_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"'{api_url}' is not the address of a Prefect API")
    return api_url.strip().rstrip("/")


def resume_paused_run(
    api_url: str,
    flow_run_id: str,
    pause_key: str,
    answers: SceneAnswers,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> ResumeResult:
    """Resume the flow run `flow_run_id` paused at `pause_key` with `answers` as its input,
    unless it no longer waits there. `headers`: the API's authorization, if it needs one."""
    api = check_api_url(api_url)
    try:
        run = str(uuid.UUID(flow_run_id))
    except ValueError:
        raise ConfigurationError(f"'{flow_run_id}' is not a flow run id") from None
    if not PAUSE_KEY.fullmatch(pause_key):
        raise ConfigurationError(f"'{pause_key[:80]}' is not a pause key")
    body = {"run_input": {scene: dict(answer) for scene, answer in answers.items()}}
    try:
        with httpx.Client(base_url=api, headers=dict(headers or {}), timeout=timeout_s) as client:
            late = _too_late(client, run, pause_key)
            if late is not None:
                return late
            answer = client.post(f"/flow_runs/{run}/resume", json=body)
            if answer.status_code >= 400:
                return _refused(answer)
            return _resumed(client, run, pause_key, answer.json())
    except ValueError:
        return ResumeResult(
            Outcome.REFUSED, f"the Prefect API at {api} gave an answer that is not JSON"
        )
    except httpx.TransportError as exc:
        return ResumeResult(
            Outcome.UNREACHABLE,
            f"the run's Prefect API at {api} cannot be reached ({type(exc).__name__}): "
            "is the run still going?",
        )


def _too_late(client: httpx.Client, run: str, pause_key: str) -> ResumeResult | None:
    """Why the run no longer takes an answer at `pause_key`, or None while it does."""
    answer = client.get(f"/flow_runs/{run}")
    if answer.status_code == 404:
        return ResumeResult(Outcome.ENDED, f"the Prefect API does not know the flow run {run}")
    if answer.status_code >= 400:
        return _refused(answer)
    flow_run: dict[str, Any] = answer.json()
    state = flow_run.get("state") or {}
    details = state.get("state_details") or {}
    if flow_run.get("state_type") == "PAUSED" and details.get("pause_key") == pause_key:
        deadline = _moment(details.get("pause_timeout"))
        if deadline is not None and deadline <= datetime.now(UTC):
            return ResumeResult(Outcome.TIMED_OUT, "timed out: nobody answered in time")
        return None if _saved(client, run, f"paused-{pause_key}-schema") else NOT_WAITING_YET
    return _moved_on(client, run, pause_key, flow_run)


def _saved(client: httpx.Client, run: str, key: str) -> bool:
    """Whether the run's input `key` is saved (a form's schema, or an answer)."""
    return client.get(f"/flow_runs/{run}/input/{key}").status_code == 200


def _moved_on(
    client: httpx.Client, run: str, pause_key: str, flow_run: dict[str, Any]
) -> ResumeResult:
    """The run left the pause: answered (its input saved), ended, or it timed out."""
    if _saved(client, run, f"paused-{pause_key}-response"):
        return ResumeResult(Outcome.ANSWERED, ALREADY_ANSWERED)
    state_type = str(flow_run.get("state_type") or "")
    if state_type in FINAL_STATES:
        name = (flow_run.get("state") or {}).get("name") or state_type.title()
        return ResumeResult(Outcome.ENDED, f"the run has ended ({name})")
    if not _saved(client, run, f"paused-{pause_key}-schema"):
        return NOT_WAITING_YET
    return ResumeResult(Outcome.TIMED_OUT, "timed out: the run went on without an answer")


def _resumed(
    client: httpx.Client, run: str, pause_key: str, result: dict[str, Any]
) -> ResumeResult:
    status = result.get("status")
    if status == "ACCEPT":
        return ResumeResult(Outcome.ACCEPTED, "accepted: the run goes on")
    reason = str((result.get("details") or {}).get("reason") or status)
    if "timed out" in reason:
        return ResumeResult(Outcome.TIMED_OUT, "timed out: nobody answered in time")
    if status == "ABORT":  # it stopped waiting between the question and the answer
        late = _too_late(client, run, pause_key)
        if late is not None:
            return late
    return ResumeResult(Outcome.REFUSED, f"the Prefect API refused the answer: {_line(reason)}")


def _refused(answer: httpx.Response) -> ResumeResult:
    try:
        detail = answer.json().get("detail", answer.text)
    except ValueError:
        detail = answer.text
    return ResumeResult(
        Outcome.REFUSED, f"the Prefect API answered {answer.status_code}: {_line(str(detail))}"
    )


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else f"{line[: limit - 1]}…"
