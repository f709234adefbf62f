"""What the studio serves and how: SOURCE and TARGET, where it listens, its token and limits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from configs.settings import Settings
from domain.errors import ConfigurationError
from studio.security import TOKEN_ENV, check_bind

MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class StudioConfig:
    source: str
    """SOURCE as the watcher reads it: a folder (absolute path) or `s3://bucket/prefix/`."""
    target: str
    """TARGET: every storyboard folder under SOURCE renders to the same path under it."""
    host: str = "127.0.0.1"
    port: int = 8700
    token: str | None = None
    """STORYBOARD_STUDIO_TOKEN: when set, every request must carry it."""
    max_upload_bytes: int = 50 * MEGABYTE
    max_recording_s: float | None = None
    """Recordings longer than this are refused (transcription.max_recording_s)."""
    prefect_ui: str | None = None
    """The Prefect UI for links to flow runs (PREFECT_UI_URL, else from PREFECT_API_URL)."""
    config_file: Path | None = None
    """`--config`, handed to every render."""
    backend: str | None = None
    """`--backend`, handed to every render."""
    render_env: Mapping[str, str] | None = field(default=None, repr=False)
    """The environment of the studio's own renders (None: this process's)."""
    allowed_hosts: tuple[str, ...] = ()
    """`--allowed-host`: names besides the bound address and loopback's that a request's
    Host may carry."""


def prefect_ui_url(env: Mapping[str, str]) -> str | None:
    """Where the Prefect UI is: PREFECT_UI_URL, else PREFECT_API_URL without its `/api`."""
    ui = env.get("PREFECT_UI_URL", "").strip().rstrip("/")
    if ui:
        return ui
    api = env.get("PREFECT_API_URL", "").strip().rstrip("/")
    return api.removesuffix("/api") or None


def studio_config(
    source: str,
    target: str,
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    config_file: Path | None = None,
    backend: str | None = None,
    env: Mapping[str, str] | None = None,
    allowed_hosts: tuple[str, ...] = (),
) -> StudioConfig:
    """The studio's configuration from the command line, the settings and the environment;
    ConfigurationError when it would listen beyond loopback without a token."""
    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV, "").strip() or None
    host = host or settings.studio.host
    check_bind(host, token, allowed_hosts)
    port = port or settings.studio.port
    if not 0 < port < 65536:
        raise ConfigurationError(f"--port {port}: a port is from 1 to 65535")
    return StudioConfig(
        source=source,
        target=target,
        host=host,
        port=port,
        token=token,
        max_upload_bytes=round(settings.studio.max_upload_mb * MEGABYTE),
        max_recording_s=settings.transcription.max_recording_s,
        prefect_ui=prefect_ui_url(env),
        config_file=config_file,
        backend=backend,
        allowed_hosts=allowed_hosts,
    )
