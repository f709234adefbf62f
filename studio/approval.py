"""Images waiting for approval: a run paused by `generation.approve_images` lists them in
TARGET/approval/pending.json (`tasks/approval.py:show_for_approval`); the storyboard page
shows them above the scene cards, and the reviewer's answer resumes the paused run through
the Prefect API it talks to (`clients/approvals.py`), as the Prefect UI's form would. Whoever
answers first wins: a later answer changes nothing and says why.

    GET  /storyboard/approval?board=B              the panel alone (the page refreshes it)
    GET  /storyboard/approval/file/NAME?board=B    an image pending.json lists, or its sheet
    POST /storyboard/approval?board=B              the answer: flow_run_id, pause_key, and per
                                                   scene decision.ID (approve, reject, skip),
                                                   note.ID, prompt.ID; or all=approve
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from clients.approvals import ALREADY_ANSWERED, Outcome, ResumeResult, resume_paused_run
from clients.layout import read_pending
from clients.storage import Storage, content_type
from domain.errors import StorageError
from domain.layout import APPROVAL_FOLDER, PendingApproval
from flows.temporary_server import recorded_temporary_apis
from studio.actions import MAX_PROMPT, Done, checked_form
from studio.catalog import Board
from studio.context import Studio, studio_of
from studio.errors import StudioError, not_found
from studio.security import CSRF_FIELD
from tasks.approval import is_approval_file

router = APIRouter()
DECISIONS = ("approve", "reject", "skip")
MAX_NOTE = 500
ANSWER_FIELDS = ("decision", "note", "prompt")
FORM_FIELDS = frozenset({CSRF_FIELD, "flow_run_id", "pause_key", "all"})
NOTHING_WAITS = f"nothing waits for approval any more: {ALREADY_ANSWERED}, or the run has ended"
STATUS = {
    Outcome.ANSWERED: 409,
    Outcome.TIMED_OUT: 409,
    Outcome.ENDED: 409,
    Outcome.NOT_YET: 409,
    Outcome.UNREACHABLE: 502,
    Outcome.REFUSED: 502,
}


def approval_folder(board: Board) -> Storage:
    return board.target_storage().child(APPROVAL_FOLDER)


def approval_values(studio: Studio, board: Board) -> dict[str, Any]:
    """What the page's approval panel shows."""
    pending = read_pending(approval_folder(board))
    answered = pending is not None and (pending.flow_run_id, pending.pause_key) in studio.answered
    return {
        "board": board,
        "approval": pending,
        "approval_answered": answered,
        "decisions": [(value, value.title()) for value in DECISIONS],
        "max_note": MAX_NOTE,
        "max_prompt": MAX_PROMPT,
    }


def _limited(value: str, limit: int, what: str, scene_id: str) -> str:
    text = value.strip()
    if len(text) > limit:
        raise StudioError(400, f"{scene_id}: {what} is at most {limit} characters")
    return text


def _given(fields: Mapping[str, str], pending: PendingApproval) -> dict[str, dict[str, str]]:
    """The per-scene fields, by scene id; 400 for any field or scene the form cannot have."""
    waiting = {scene.scene_id for scene in pending.scenes}
    given: dict[str, dict[str, str]] = {}
    for name, value in fields.items():
        if name in FORM_FIELDS:
            continue
        kind, dot, scene_id = name.partition(".")
        if not dot or kind not in ANSWER_FIELDS:
            raise StudioError(400, f"the form has an unknown field '{name[:80]}'")
        if scene_id not in waiting:
            raise StudioError(400, f"scene '{scene_id[:80]}' does not wait for approval")
        given.setdefault(scene_id, {})[kind] = value
    return given


def answers_from(fields: Mapping[str, str], pending: PendingApproval) -> dict[str, dict[str, str]]:
    """The run input for `pending`'s form: one answer per waiting scene, each checked."""
    every = fields.get("all")
    if every is not None and every != "approve":
        raise StudioError(400, "all=approve is the only answer for every scene at once")
    given = _given(fields, pending)
    answers = {}
    for scene in pending.scenes:
        entry = given.get(scene.scene_id, {})
        decision = "approve" if every else entry.get("decision", "").strip()
        if decision not in DECISIONS:
            said = f"'{decision[:40]}' is not an answer" if decision else "no answer"
            raise StudioError(400, f"{scene.scene_id}: {said} (approve, reject or skip)")
        note = _limited(entry.get("note", ""), MAX_NOTE, "a note", scene.scene_id)
        prompt = _limited(entry.get("prompt", ""), MAX_PROMPT, "a prompt", scene.scene_id)
        answers[scene.scene_id] = {
            "decision": decision,
            "note": note,
            "prompt": prompt if decision == "reject" else "",
        }
    return answers


def current_pending(board: Board, fields: Mapping[str, str]) -> PendingApproval:
    """The pending approval the form answers; 409 when it is gone or another one waits."""
    pending = read_pending(approval_folder(board))
    run, key = fields.get("flow_run_id", ""), fields.get("pause_key", "")
    if not run or not key:
        raise StudioError(400, "the form names no paused run (flow_run_id, pause_key)")
    if pending is None:
        raise StudioError(409, NOTHING_WAITS)
    if (run, key) != (pending.flow_run_id, pending.pause_key):
        raise StudioError(
            409,
            f"this form was {ALREADY_ANSWERED}; round {pending.round} waits now: reload the page",
        )
    return pending


def check_api_url(api_url: str) -> None:
    """A pending.json may name only the studio's own Prefect API or the temporary API that a
    `storyboard run` on this machine recorded in PREFECT_HOME (flows/temporary_server.py):
    an address read from TARGET alone, which anyone who can write there chooses, is never
    called."""
    wanted = api_url.strip().rstrip("/")
    own = str(PREFECT_API_URL.value() or "").rstrip("/")
    if (own and own == wanted) or wanted in recorded_temporary_apis():
        return
    raise StudioError(
        409,
        f"not sent: the run waits on a Prefect API ({wanted!r}) that is neither this "
        "studio's PREFECT_API_URL nor the temporary API of a run on this machine",
    )


def api_headers(api_url: str) -> dict[str, str]:
    """The studio's own Prefect credentials, for its own Prefect API only (never sent to
    another address a pending.json names)."""
    own = str(PREFECT_API_URL.value() or "").rstrip("/")
    if not own or own != api_url.strip().rstrip("/"):
        return {}
    auth, key = PREFECT_API_AUTH_STRING.value(), PREFECT_API_KEY.value()
    if auth:
        return {"Authorization": f"Basic {base64.b64encode(auth.encode()).decode()}"}
    return {"Authorization": f"Bearer {key}"} if key else {}


def _tally(answers: Mapping[str, Mapping[str, str]]) -> str:
    counts = {d: sum(a["decision"] == d for a in answers.values()) for d in DECISIONS}
    return f"{counts['approve']} approved, {counts['reject']} rejected, {counts['skip']} skipped"


def answer(studio: Studio, board: Board, fields: dict[str, str]) -> Done:
    """Resume the paused run with the reviewer's answers, if it still waits for them."""
    pending = current_pending(board, fields)
    answers = answers_from(fields, pending)
    check_api_url(pending.api_url)
    with studio.locks(f"approval:{board.path}"):
        result: ResumeResult = resume_paused_run(
            pending.api_url,
            pending.flow_run_id,
            pending.pause_key,
            answers,
            headers=api_headers(pending.api_url),
        )
        if result.outcome in (Outcome.ACCEPTED, Outcome.ANSWERED):
            studio.answered.add((pending.flow_run_id, pending.pause_key))
    if not result.accepted:
        raise StudioError(STATUS[result.outcome], f"not sent: {result.reason}")
    return Done(
        f"images answered (round {pending.round}: {_tally(answers)}); the run goes on",
        {
            "approval": {
                "flow_run_id": pending.flow_run_id,
                "pause_key": pending.pause_key,
                "round": pending.round,
                "answers": answers,
            }
        },
    )


@router.get("/storyboard/approval")
def approval_panel(request: Request, board: str = "") -> Response:
    """The panel alone, for the page to put in place when another round waits."""
    studio = studio_of(request)
    values = approval_values(studio, studio.board(board))
    return studio.page(request, "approval.html.j2", **values)


@router.get("/storyboard/approval/file/{name}")
def approval_file(request: Request, name: str, board: str = "") -> Response:
    """An image (or the contact sheet) the pending approval lists; 404 for any other name."""
    studio = studio_of(request)
    folder = approval_folder(studio.board(board))
    pending = read_pending(folder)
    if pending is None or name not in pending.files or not is_approval_file(name):
        raise not_found(name)  # only the pictures the pipeline writes, never a page or script
    try:
        data = folder.read_bytes(name)
    except StorageError:
        data = None
    if data is None:
        raise not_found(name)
    headers = {"Cache-Control": "no-store", "Content-Type": content_type(name)}
    return Response(data, headers=headers)


@router.post("/storyboard/approval")
async def post_approval(request: Request, board: str = "") -> Response:
    """The reviewer's answer to the images waiting for approval."""
    studio = studio_of(request)
    chosen = await run_in_threadpool(studio.board, board)
    fields = await checked_form(studio, request)
    done: Done = await run_in_threadpool(answer, studio, chosen, fields)
    return studio.answer(request, chosen, done.message, **done.extra)
