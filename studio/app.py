"""The studio's FastAPI application, `create_app(config)`, and `serve(config, socket)` with uvicorn.

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
    GET  /storyboard/characters?board=B           the characters' panel alone
    GET  /storyboard/reference?board=B&file=NAME  a character's reference picture
    POST /storyboard/character/NAME/reference?board=B   a new or changed reference picture
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from domain.errors import ConfigurationError, StorageError
from studio import actions, approval, character_routes, pages
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
    app.include_router(character_routes.router)
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


def listening_socket(config: StudioConfig) -> socket.socket:
    """The studio's address, bound now, so that a port another program holds is said in one
    line before any URL is printed."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    try:
        return socket.create_server((config.host, config.port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {config.port} on {config.host} is taken by another program: "
                "stop it or choose another with --port"
            ) from None
        raise ConfigurationError(f"cannot listen on {config.host}:{config.port}: {exc}") from None


def serve(config: StudioConfig, listening: socket.socket) -> None:
    """Serve the studio on `listening` until interrupted (Ctrl-C)."""
    import uvicorn

    server_config = uvicorn.Config(
        create_app(config),
        log_level="warning",
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(server_config).run(sockets=[listening])
