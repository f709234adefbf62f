"""The characters' routes: their panel, their reference pictures, and a new or changed
reference (`studio/characters.py` checks and writes it; a render follows, in which the cache
re-renders exactly the scenes that show the character).

    GET  /storyboard/characters?board=B                  the characters' panel alone
    GET  /storyboard/reference?board=B&file=NAME         a reference picture from the source
    POST /storyboard/character/NAME/reference?board=B    a picture (`file`), `replace`=1..4
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from clients.storage import content_type, is_s3
from domain.errors import ConfigurationError
from domain.storyboard import MAX_REFERENCES
from studio.actions import Done, checked_upload, rendering
from studio.catalog import Board, manifest_rows
from studio.characters import character_panels, check_picture, is_reference, set_reference
from studio.context import Studio, studio_of
from studio.errors import StudioError, not_found
from studio.sources import read_source
from tasks.characters import MAX_REFERENCE_BYTES, inside

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}


def panel_values(board: Board) -> dict[str, Any]:
    state = read_source(board.source_storage())
    return {
        "board": board,
        "characters": character_panels(state.spec, manifest_rows(board.target_storage())),
    }


@router.get("/storyboard/characters")
def characters_panel(request: Request, board: str = "") -> Response:
    studio = studio_of(request)
    return studio.page(request, "characters.html.j2", **panel_values(studio.board(board)))


@router.get("/storyboard/reference")
def reference_picture(request: Request, file: str, board: str = "") -> Response:
    """One of the storyboard's reference pictures; 404 for any file storyboard.yaml does not
    name as one, for one that leaves the source (a link) and for one over the size limit."""
    chosen = studio_of(request).board(board)
    storage = chosen.source_storage()
    if not is_reference(read_source(storage).spec, file):
        raise not_found(file)
    headers = {**NO_STORE, "Content-Type": content_type(file)}
    if not is_s3(chosen.source):
        try:
            path = inside(Path(chosen.source), file, "reference")
        except ConfigurationError:
            raise not_found(file) from None
        if not path.is_file() or path.stat().st_size > MAX_REFERENCE_BYTES:
            raise not_found(file)
        return FileResponse(path, headers=headers)
    data = storage.read_bytes(file)
    if data is None or len(data) > MAX_REFERENCE_BYTES:
        raise not_found(file)
    return Response(data, headers=headers)


def _replacing(field_value: str | None) -> int | None:
    value = (field_value or "").strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_REFERENCES:
        raise StudioError(400, f"replace names a reference by its place, 1 to {MAX_REFERENCES}")
    return int(value) - 1


def new_reference(
    studio: Studio, board: Board, character: str, data: bytes, replace: int | None
) -> Done:
    picture = check_picture(data, character)
    storage = board.source_storage()
    with studio.locks(board.path):
        name = set_reference(storage, read_source(storage), character, replace, picture)
    job = studio.renders.submit(board, [], f"a new reference for {character}")
    said = "new reference" if replace is None else f"reference {replace + 1} changed"
    return Done(
        f"{character}: {said}, saved as {name}",
        {"character": character, "file": name, **rendering(studio, job)},
    )


@router.post("/storyboard/character/{character}/reference")
async def post_reference(request: Request, character: str, board: str = "") -> Response:
    """A new reference picture for the character (`replace`: the place of the one it
    replaces, 1 to 4; absent: added after the others)."""
    studio = studio_of(request)
    chosen = await run_in_threadpool(studio.board, board)
    limit = min(MAX_REFERENCE_BYTES, studio.config.max_upload_bytes)
    received = await checked_upload(studio, request, limit, "picture")
    replace = _replacing(received.fields.get("replace"))
    done: Done = await run_in_threadpool(
        new_reference, studio, chosen, character, received.data, replace
    )
    return studio.answer(request, chosen, done.message, **done.extra)
