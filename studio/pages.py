"""What the studio shows: the storyboards, a storyboard with its scene cards, the render's
status as JSON, and the files of TARGET a page plays (the video, each scene's image and clip).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from clients.layout import read_reviews
from clients.storage import content_type, is_s3, safe_name
from domain.errors import StorageError
from domain.layout import VIDEO_FILE
from studio.approval import approval_values
from studio.cards import scene_cards
from studio.catalog import (
    Board,
    RunSummary,
    flow_run_url,
    list_boards,
    manifest_rows,
    run_summary,
    served_names,
)
from studio.characters import character_panels
from studio.context import Studio, studio_of
from studio.errors import not_found
from studio.sources import read_source

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class BoardEntry:
    board: Board
    summary: RunSummary | None
    flow_run_url: str | None


@router.get("/")
def home(request: Request) -> Response:
    studio = studio_of(request)
    config = studio.config
    entries = []
    for board in list_boards(config.source, config.target):
        summary = run_summary(board.target_storage())
        link = flow_run_url(config.prefect_ui, summary.flow_run_id if summary else None)
        entries.append(BoardEntry(board, summary, link))
    return studio.page(
        request, "home.html.j2", boards=entries, source=config.source, target=config.target
    )


def board_values(studio: Studio, board: Board) -> dict[str, Any]:
    """Everything a storyboard page and its cards show."""
    target = board.target_storage()
    state = read_source(board.source_storage())
    rows = manifest_rows(target)
    summary = run_summary(target)
    renderer = studio.renders.backend()
    return {
        "board": board,
        "state": state,
        "summary": summary,
        "flow_run_url": flow_run_url(
            studio.config.prefect_ui, summary.flow_run_id if summary else None
        ),
        "cards": scene_cards(state, rows, read_reviews(target)),
        "characters": character_panels(state.spec, rows),
        "video_file": VIDEO_FILE if rows and summary is not None else None,
        "renderer_label": renderer.label,
        "max_upload_mb": studio.config.max_upload_bytes / 1024 / 1024,
    }


@router.get("/storyboard")
def storyboard_page(request: Request, board: str = "", notice: str = "") -> Response:
    studio = studio_of(request)
    chosen = studio.board(board)
    values = {**board_values(studio, chosen), **approval_values(studio, chosen)}
    return studio.page(request, "storyboard.html.j2", notice=notice, **values)


@router.get("/storyboard/cards")
def storyboard_cards(request: Request, board: str = "") -> Response:
    """The cards alone, for the page to put in place once a render is done."""
    studio = studio_of(request)
    return studio.page(request, "cards.html.j2", **board_values(studio, studio.board(board)))


@router.get("/storyboard/render")
def render_status(request: Request, board: str = "") -> Response:
    studio = studio_of(request)
    status = studio.renders.status(studio.board(board))
    return JSONResponse(status, headers=NO_STORE)


@router.get("/storyboard/file/{name:path}")
def target_file(request: Request, name: str, board: str = "") -> Response:
    """A file of the storyboard's TARGET that its manifest names (or the video); 404 for any
    other name, so no path from the address ever reaches the filesystem unchecked."""
    studio = studio_of(request)
    chosen = studio.board(board)
    storage = chosen.target_storage()
    if name not in served_names(manifest_rows(storage)):
        raise not_found(name)
    headers = {**NO_STORE, "Content-Type": content_type(name)}
    if is_s3(chosen.target):
        data = storage.read_bytes(name)
        if data is None:
            raise not_found(name)
        return Response(data, headers=headers)
    try:
        root = Path(chosen.target).resolve()
        path = (root / safe_name(name)).resolve()
    except StorageError:
        raise not_found(name) from None
    if not path.is_relative_to(root) or not path.is_file():
        raise not_found(name)
    return FileResponse(path, headers=NO_STORE, media_type=content_type(name))
