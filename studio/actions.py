"""What a reviewer does to a scene. Every action is a POST that passes the guard (token,
same-origin, CSRF token), names a storyboard the watcher would find and a scene its source or
last render has (404 otherwise), and changes nothing unless all of it is accepted.

Recordings and storyboard.yaml edits go to the storyboard's SOURCE (`studio/sources.py`) and
are followed by a render; verdicts go beside the outputs in TARGET (`studio/reviews.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from studio.catalog import Board
from studio.context import Studio, studio_of
from studio.errors import StudioError
from studio.renders import RenderJob
from studio.reviews import record_verdict
from studio.security import CSRF_FIELD, CSRF_HEADER
from studio.sources import (
    MAX_SEED,
    add_scene,
    new_take,
    random_seed,
    read_source,
    replace_recording,
    set_skip,
)
from studio.uploads import Received, check_recording, read_form, receive_upload

router = APIRouter()
SCENE = "/storyboard/scene/{scene_id}"
MAX_PROMPT = 2000
TRUE = frozenset({"true", "1", "on", "yes"})


@dataclass(frozen=True)
class Done:
    """What an action did: a line for the person, and its JSON details."""

    message: str
    extra: dict[str, Any] = field(default_factory=dict)


FormAction = Callable[[Studio, Board, str, dict[str, str]], Done]
RecordingAction = Callable[[Studio, Board, str, bytes], Done]


def rendering(studio: Studio, job: RenderJob) -> dict[str, Any]:
    return {"render": job.as_json(studio.config.prefect_ui)}


async def checked_upload(
    studio: Studio, request: Request, limit: int, what: str = "recording"
) -> Received:
    """An uploaded file (and its form's fields), once its CSRF token is this browser's."""
    if CSRF_HEADER in request.headers:  # refused before the body is read
        studio.guard.check_csrf(request, None)
    received = await receive_upload(request, limit, what)
    studio.guard.check_csrf(request, received.fields.get(CSRF_FIELD))
    return received


async def checked_form(studio: Studio, request: Request) -> dict[str, str]:
    """A small form's fields, once its CSRF token (header or field) is this browser's."""
    if CSRF_HEADER in request.headers:
        studio.guard.check_csrf(request, None)
    fields = await read_form(request)
    studio.guard.check_csrf(request, fields.get(CSRF_FIELD))
    return fields


def replace(studio: Studio, board: Board, scene_id: str, data: bytes) -> Done:
    studio.scene_state(board, scene_id)
    recording = check_recording(data, studio.config.max_recording_s)
    storage = board.source_storage()
    with studio.locks(board.path):
        replaced = replace_recording(storage, read_source(storage), scene_id, recording)
    job = studio.renders.submit(board, [scene_id], f"new recording of {scene_id}")
    return Done(
        f"{scene_id}: new recording saved as {replaced.name} ({recording.seconds:.1f} s)",
        {
            "scene_id": scene_id,
            "file": replaced.name,
            "kept": replaced.kept,
            **rendering(studio, job),
        },
    )


def add_after(studio: Studio, board: Board, after: str, data: bytes) -> Done:
    studio.scene_state(board, after)
    recording = check_recording(data, studio.config.max_recording_s)
    storage = board.source_storage()
    with studio.locks(board.path):
        scene_id = add_scene(storage, read_source(storage), after, recording)
    job = studio.renders.submit(board, [scene_id], f"new scene {scene_id} after {after}")
    return Done(
        f"new scene {scene_id} added after {after}",
        {"scene_id": scene_id, "after": after, **rendering(studio, job)},
    )


def _seed(field_value: str | None, current: str) -> int | None:
    value = (field_value or "").strip()
    if value == "new":
        return random_seed(int(current) if current.isdigit() else None)
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_SEED:
        raise StudioError(400, f"a seed is a whole number from 0 to {MAX_SEED}")
    return int(value)


def _prompt(field_value: str | None) -> str | None:
    if field_value is None:
        return None
    prompt = " ".join(field_value.split())
    if len(prompt) > MAX_PROMPT:
        raise StudioError(400, f"a prompt is at most {MAX_PROMPT} characters")
    return prompt


def take(studio: Studio, board: Board, scene_id: str, fields: dict[str, str]) -> Done:
    _, row = studio.scene_state(board, scene_id)
    seed = _seed(fields.get("seed"), str(row.get("seed", "")))
    prompt = _prompt(fields.get("prompt"))
    storage = board.source_storage()
    with studio.locks(board.path):
        new_take(storage, read_source(storage), scene_id, seed, prompt)
    job = studio.renders.submit(board, [scene_id], f"new take of {scene_id}")
    said = [f"seed {seed}"] if seed is not None else []
    if prompt is not None:
        said.append("a new prompt" if prompt else "the narration as prompt")
    return Done(
        f"{scene_id}: new take with {' and '.join(said)}",
        {"scene_id": scene_id, "seed": seed, "prompt": prompt, **rendering(studio, job)},
    )


def skip(studio: Studio, board: Board, scene_id: str, fields: dict[str, str]) -> Done:
    studio.scene_state(board, scene_id)
    skipped = fields.get("skip", "true").strip().lower() in TRUE
    storage = board.source_storage()
    with studio.locks(board.path):
        set_skip(storage, read_source(storage), scene_id, skipped)
    job = studio.renders.submit(board, [], f"{scene_id} {'skipped' if skipped else 'brought back'}")
    return Done(
        f"{scene_id}: {'skipped' if skipped else 'back in the storyboard'}",
        {"scene_id": scene_id, "skip": skipped, **rendering(studio, job)},
    )


def review(studio: Studio, board: Board, scene_id: str, fields: dict[str, str]) -> Done:
    _, row = studio.scene_state(board, scene_id)
    verdict = fields.get("verdict", "").strip()
    entry = record_verdict(
        board.target_storage(), scene_id, verdict, fields.get("comment", ""), row
    )
    said = "approved" if verdict == "approved" else "needs changes"
    return Done(f"{scene_id}: {said}", {"scene_id": scene_id, "review": asdict(entry)})


@router.post(f"{SCENE}/recording")
async def post_recording(request: Request, scene_id: str, board: str = "") -> Response:
    """Replace the scene's recording (raw body from the microphone, or a `file` form field)."""
    return await _recording_action(request, scene_id, board, replace)


@router.post(f"{SCENE}/after")
async def post_scene_after(request: Request, scene_id: str, board: str = "") -> Response:
    """A new scene after this one, from a recording (as for `recording`)."""
    return await _recording_action(request, scene_id, board, add_after)


@router.post(f"{SCENE}/take")
async def post_take(request: Request, scene_id: str, board: str = "") -> Response:
    """Another take: `seed` ("new" for a random one, a number, or empty to keep it) and/or
    `prompt` (empty: back to the narration)."""
    return await _form_action(request, scene_id, board, take)


@router.post(f"{SCENE}/skip")
async def post_skip(request: Request, scene_id: str, board: str = "") -> Response:
    """`skip=true` skips the scene, `skip=false` brings it back."""
    return await _form_action(request, scene_id, board, skip)


@router.post(f"{SCENE}/review")
async def post_review(request: Request, scene_id: str, board: str = "") -> Response:
    """`verdict` (approved or needs_changes) and `comment`, kept in TARGET/review.json."""
    return await _form_action(request, scene_id, board, review)


@router.post("/storyboard/render")
async def post_render(request: Request, board: str = "") -> Response:
    """Render the whole storyboard now: its first render, or one after changes made outside
    the studio."""
    studio = studio_of(request)
    chosen = await run_in_threadpool(studio.board, board)
    await checked_form(studio, request)
    job = studio.renders.submit(chosen, [], "a render asked for in the studio")
    return studio.answer(request, chosen, "render queued", **rendering(studio, job))


async def _recording_action(
    request: Request, scene_id: str, board: str, action: RecordingAction
) -> Response:
    studio = studio_of(request)
    chosen = await run_in_threadpool(studio.board, board)
    received = await checked_upload(studio, request, studio.config.max_upload_bytes)
    done: Done = await run_in_threadpool(action, studio, chosen, scene_id, received.data)
    return studio.answer(request, chosen, done.message, **done.extra)


async def _form_action(request: Request, scene_id: str, board: str, action: FormAction) -> Response:
    studio = studio_of(request)
    chosen = await run_in_threadpool(studio.board, board)
    fields = await checked_form(studio, request)
    done: Done = await run_in_threadpool(action, studio, chosen, scene_id, fields)
    return studio.answer(request, chosen, done.message, **done.extra)
