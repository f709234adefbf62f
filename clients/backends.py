"""Which generation backend a run uses, and one instance of it per process."""

from __future__ import annotations

import threading

from clients.draft import DraftBackend
from clients.errors import ConfigurationError
from clients.generation import GenerationBackend
from clients.nim import NimClient, check_ready, nim_base_url
from clients.nvidia import API_KEY_VARIABLE, ClientOptions, NvidiaClient, RetryPolicy, read_api_key
from clients.ratelimit import RateLimiter
from configs.settings import GenerationSettings

_backends: dict[tuple[str, GenerationSettings], GenerationBackend] = {}
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


def create_backend(name: str, settings: GenerationSettings) -> GenerationBackend:
    check_backend(name)
    if name == "draft":
        return DraftBackend()
    options = ClientOptions.from_environment(
        timeout_s=settings.request_timeout_s,
        poll_deadline_s=settings.poll_deadline_s,
        retry=RetryPolicy(attempts=settings.max_attempts),
    )
    limiter = RateLimiter(settings.requests_per_minute)
    if name == "nim":
        return NimClient(nim_base_url(), options=options, limiter=limiter)
    return NvidiaClient(options=options, limiter=limiter)


def backend_for(name: str, settings: GenerationSettings) -> GenerationBackend:
    """The process-wide backend for `name` and these settings, created on first use.

    Every scene task of a process shares it, and with it one connection pool and one
    rate limiter.
    """
    with _lock:
        backend = _backends.get((name, settings))
        if backend is None:
            backend = create_backend(name, settings)
            _backends[(name, settings)] = backend
        return backend
