"""One running studio: its configuration, guard, render queue, locks and templates, and the
answers every route gives (a page, JSON for the page's script, or a redirect for a plain form).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from studio.catalog import Board, find_board, manifest_rows
from studio.config import StudioConfig
from studio.errors import StudioError, not_found
from studio.renders import RenderService
from studio.security import Guard, wants_json
from studio.sources import SourceLocks, SourceState, read_source

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def templates() -> Environment:
    """Autoescaped, strict: every text is escaped by the engine and a missing name fails."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.filters["urlpath"] = lambda value: quote(str(value), safe="/")
    environment.filters["query"] = lambda board: urlencode({"board": board.path})
    return environment


@dataclass
class Studio:
    config: StudioConfig
    renders: RenderService
    guard: Guard
    locks: SourceLocks = field(default_factory=SourceLocks)
    jinja: Environment = field(default_factory=templates)
    answered: set[tuple[str, str]] = field(default_factory=set)
    """The (flow run, pause key) pairs of image approvals answered, here or elsewhere."""

    def board(self, path: str) -> Board:
        return find_board(self.config.source, self.config.target, path)

    def scene_state(self, board: Board, scene_id: str) -> tuple[SourceState, dict[str, Any]]:
        """The source's state and the scene's manifest row; 404 for a scene neither the
        source nor the last render has."""
        state = read_source(board.source_storage())
        rows = manifest_rows(board.target_storage())
        if scene_id not in state.files and scene_id not in rows:
            raise not_found(f"scene '{scene_id}'")
        return state, rows.get(scene_id, {})

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        cookie = getattr(request.state, "csrf_cookie", None) or ""
        html = self.jinja.get_template(template).render(
            csrf_token=self.guard.csrf_token_for(cookie) if cookie else "",
            **values,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def answer(self, request: Request, board: Board, message: str, **extra: Any) -> Response:
        """What an action answers: JSON for the page's script, else back to the page."""
        if wants_json(request):
            return JSONResponse({"ok": True, "message": message, **extra})
        query = urlencode({"board": board.path, "notice": message})
        return RedirectResponse(f"/storyboard?{query}", status_code=303)

    def refusal(self, request: Request, error: StudioError) -> Response:
        if wants_json(request):
            return JSONResponse({"error": error.message}, status_code=error.status)
        return self.page(request, "error.html.j2", error.status, error=error)


def studio_of(request: Request) -> Studio:
    return cast(Studio, request.app.state.studio)
