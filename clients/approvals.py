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

import json
import re
import time
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
CONNECT_RETRIES = 2
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
BUSY = frozenset({429, 502, 503, 504})
"""Answers of a busy API (Prefect's server says 503 when SQLite is busy): asked again."""
ACCEPTED = "accepted: the run goes on"
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
    unless it no longer waits there. `headers`: the API's authorization, if it needs one.

    A busy API (429, 502-504: SQLite busy, a proxy) is asked again after a moment; an answer
    whose fate is unknown is looked up in the run's saved input, so the very answers the run
    already took count as accepted and never as someone else's."""
    api = check_api_url(api_url)
    try:
        run = str(uuid.UUID(flow_run_id))
    except ValueError:
        raise ConfigurationError(f"'{flow_run_id}' is not a flow run id") from None
    if not PAUSE_KEY.fullmatch(pause_key):
        raise ConfigurationError(f"'{pause_key[:80]}' is not a pause key")
    mine = {scene: dict(answer) for scene, answer in answers.items()}
    transport = httpx.HTTPTransport(retries=CONNECT_RETRIES)
    try:
        with httpx.Client(
            base_url=api, headers=dict(headers or {}), timeout=timeout_s, transport=transport
        ) as client:
            pause = _Pause(client, f"/flow_runs/{run}", pause_key, mine)
            late = pause.too_late()
            return late if late is not None else pause.answer()
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


@dataclass(frozen=True)
class _Pause:
    """One pause of one flow run, asked about and answered through `client`."""

    client: httpx.Client
    path: str
    """/flow_runs/{id}"""
    key: str
    mine: dict[str, dict[str, str]]

    def get(self, path: str) -> httpx.Response:
        """GET, asked again while the API is busy."""
        found = self.client.get(f"{self.path}{path}")
        for delay in RETRY_DELAYS_S:
            if found.status_code not in BUSY:
                break
            time.sleep(delay)
            found = self.client.get(f"{self.path}{path}")
        return found

    def saved(self, what: str) -> Any:
        """The run's input `paused-{key}-{what}` (its form's schema, its answer), or None."""
        found = self.get(f"/input/paused-{self.key}-{what}")
        return json.loads(found.text) if found.status_code == 200 else None

    def taken(self) -> ResumeResult | None:
        """Whose answer the run took: these answers, another's, or none yet (None)."""
        saved = self.saved("response")
        if saved is None:
            return None
        if saved == self.mine:
            return ResumeResult(Outcome.ACCEPTED, ACCEPTED)
        return ResumeResult(Outcome.ANSWERED, ALREADY_ANSWERED)

    def too_late(self) -> ResumeResult | None:
        """Why the run does not take an answer at this pause now, or None while it does."""
        found = self.get("")
        if found.status_code == 404:
            return ResumeResult(Outcome.ENDED, "the Prefect API does not know this flow run")
        if found.status_code >= 400:
            return _refused(found)
        flow_run: dict[str, Any] = found.json()
        details = (flow_run.get("state") or {}).get("state_details") or {}
        if flow_run.get("state_type") == "PAUSED" and details.get("pause_key") == self.key:
            deadline = _moment(details.get("pause_timeout"))
            if deadline is not None and deadline <= datetime.now(UTC):
                return ResumeResult(Outcome.TIMED_OUT, "timed out: nobody answered in time")
            return None if self.saved("schema") is not None else NOT_WAITING_YET
        return self.moved_on(flow_run)

    def moved_on(self, flow_run: dict[str, Any]) -> ResumeResult:
        """The run left the pause: answered (its input saved), ended, or it timed out."""
        taken = self.taken()
        if taken is not None:
            return taken
        state_type = str(flow_run.get("state_type") or "")
        if state_type in FINAL_STATES:
            name = (flow_run.get("state") or {}).get("name") or state_type.title()
            return ResumeResult(Outcome.ENDED, f"the run has ended ({name})")
        if self.saved("schema") is None:
            return NOT_WAITING_YET
        return ResumeResult(Outcome.TIMED_OUT, "timed out: the run went on without an answer")

    def answer(self) -> ResumeResult:
        """Send the answers; again while the API is busy, unless the run took them."""
        delays = iter(RETRY_DELAYS_S)
        while True:
            try:
                sent: httpx.Response | None = self.client.post(
                    f"{self.path}/resume", json={"run_input": self.mine}
                )
            except httpx.TimeoutException:
                sent = None  # its fate unknown: the saved input tells
            if sent is not None and sent.status_code < 500 and sent.status_code not in BUSY:
                return self.resumed(sent) if sent.status_code < 400 else _refused(sent)
            taken = self.taken()
            if taken is not None:
                return taken
            delay = next(delays, None)
            if delay is None:
                if sent is None:
                    raise httpx.ReadTimeout("no reply to the answer in time")
                return _refused(sent)
            time.sleep(delay)

    def resumed(self, sent: httpx.Response) -> ResumeResult:
        result: dict[str, Any] = sent.json()
        status = result.get("status")
        if status == "ACCEPT":
            return ResumeResult(Outcome.ACCEPTED, ACCEPTED)
        reason = str((result.get("details") or {}).get("reason") or status)
        if "timed out" in reason:
            return ResumeResult(Outcome.TIMED_OUT, "timed out: nobody answered in time")
        if status == "ABORT":  # it stopped waiting between the question and the answer
            late = self.too_late()
            if late is not None:
                return late
        return ResumeResult(Outcome.REFUSED, f"the Prefect API refused the answer: {_line(reason)}")


def _refused(answer: httpx.Response) -> ResumeResult:
    try:
        body = answer.json()
    except ValueError:
        body = answer.text
    detail = body.get("detail", body) if isinstance(body, dict) else body
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
