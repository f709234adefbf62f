"""The studio's FastAPI application, `create_app(config)`, and `serve(config)` with uvicorn.

Routes (a storyboard is named by `?board=<its folder relative to SOURCE>`, "" for SOURCE):

    GET  /                                     the storyboards, their counts and last run
    GET  /storyboard?board=B                   the video and a card per scene
    GET  /storyboard/cards?board=B             the cards alone (the page refreshes them)
    GET  /storyboard/render?board=B            the render queue's status, JSON
    GET  /storyboard/file/NAME?board=B         the video, a scene's image or clip, from TARGET
    GET  /storyboard/approval?board=B          the images a paused run waits on (a panel)
    GET  /storyboard/approval/file/NAME?board=B   one of them, or their contact sheet
    POST /storyboard/approval?board=B          the answer, resuming the paused run
    POST /storyboard/scene/ID/recording?board=B   replace the recording (body or form `file`)
    POST /storyboard/scene/ID/after?board=B       add a scene after ID, from a recording
    POST /storyboard/scene/ID/take?board=B        another seed and/or prompt
    POST /storyboard/scene/ID/skip?board=B        skip=true|false
    POST /storyboard/scene/ID/review?board=B      verdict=approved|needs_changes, comment
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from domain.errors import ConfigurationError, StorageError
from studio import actions, approval, pages
from studio.config import StudioConfig
from studio.context import Studio, studio_of
from studio.errors import StudioError
from studio.renders import RenderService
from studio.security import Guard, guard_middleware, trusted_hosts

STATIC = Path(__file__).resolve().parent / "static"


def create_app(config: StudioConfig, renders: RenderService | None = None) -> FastAPI:
    """The studio over `config.source` and `config.target`; renders on `renders` (by default
    the backend `studio/renders.py` chooses)."""
    app = FastAPI(title="storyboard studio", docs_url=None, redoc_url=None, openapi_url=None)
    guard = Guard(config.token)
    app.state.studio = Studio(config, renders or RenderService(config), guard)
    app.middleware("http")(guard_middleware(guard))
    hosts = trusted_hosts(config.host, config.allowed_hosts)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)  # outermost: first
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(approval.router)
    app.add_exception_handler(StudioError, _refused)
    app.add_exception_handler(StorageError, _refused)
    app.add_exception_handler(ConfigurationError, _refused)
    app.add_exception_handler(HTTPException, _refused)
    return app


async def _refused(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StudioError):
        error = exc
    elif isinstance(exc, HTTPException):
        error = StudioError(exc.status_code, str(exc.detail))
    elif isinstance(exc, StorageError):
        error = StudioError(502, f"storage refused: {exc}")
    else:
        error = StudioError(400, str(exc))
    return studio_of(request).refusal(request, error)


def serve(config: StudioConfig) -> None:
    """Serve the studio until interrupted (Ctrl-C)."""
    import uvicorn

    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
    )
