"""Which generation backend a run uses, and one instance of it per process."""

from __future__ import annotations

import threading

from clients.draft import DraftBackend
from clients.errors import ConfigurationError
from clients.generation import GenerationBackend
from clients.nim import NimClient, check_ready, nim_base_url
from clients.nvidia import API_KEY_VARIABLE, ClientOptions, NvidiaClient, RetryPolicy, read_api_key
from clients.ratelimit import PrefectRateLimit, RateLimiter, RequestBudget
from configs.settings import GenerationSettings

_backends: dict[tuple[str, GenerationSettings, str | None], GenerationBackend] = {}
_lock = threading.Lock()


def choose_backend(requested: str) -> str:
    """`auto` means nvidia when an API key is set, else the offline draft backend."""
    if requested == "auto":
        return "nvidia" if read_api_key() else "draft"
    return requested


def check_backend(name: str) -> None:
    """Fail before any work starts when `name` cannot be used here."""
    if name == "draft":
        return
    if name == "nvidia":
        if not read_api_key():
            raise ConfigurationError(f"--backend nvidia needs {API_KEY_VARIABLE} to be set")
        return
    if name == "nim":
        nim_base_url()
        return
    raise ConfigurationError(f"unknown backend '{name}'")


def check_backend_ready(name: str) -> None:
    """Before a run starts: a NIM must answer ready (FatalServiceError otherwise)."""
    if name == "nim":
        check_ready(nim_base_url())


def create_backend(
    name: str, settings: GenerationSettings, shared_limit: str | None = None
) -> GenerationBackend:
    """`shared_limit` names the Prefect rate limit that several worker processes share;
    without it the process keeps its own budget of `settings.requests_per_minute`."""
    check_backend(name)
    if name == "draft":
        return DraftBackend()
    options = ClientOptions.from_environment(
        timeout_s=settings.request_timeout_s,
        poll_deadline_s=settings.poll_deadline_s,
        retry=RetryPolicy(attempts=settings.max_attempts),
    )
    limiter: RequestBudget = RateLimiter(settings.requests_per_minute)
    if shared_limit:
        limiter = PrefectRateLimit(shared_limit, settings.requests_per_minute)
    if name == "nim":
        return NimClient(nim_base_url(), options=options, limiter=limiter)
    return NvidiaClient(options=options, limiter=limiter)


def backend_for(
    name: str, settings: GenerationSettings, shared_limit: str | None = None
) -> GenerationBackend:
    """The process-wide backend for `name` and these settings, created on first use.

    Every scene task of a process shares it, and with it one connection pool and one
    rate limiter.
    """
    key = (name, settings, shared_limit)
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            backend = create_backend(name, settings, shared_limit)
            _backends[key] = backend
        return backend


def shared_limit_name(backend: str) -> str:
    """The Prefect rate limit every worker of a distributed run draws `backend` requests from."""
    return f"storyboard-{backend}-requests"
