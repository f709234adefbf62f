"""Which generation backend a run uses, and one instance of it per process."""

from __future__ import annotations

import os
import threading

from clients.draft import DraftBackend
from clients.errors import ConfigurationError
from clients.generation import GenerationBackend

API_KEY_VARIABLE = "NVIDIA_API_KEY"

_backends: dict[str, GenerationBackend] = {}
_lock = threading.Lock()


def choose_backend(requested: str) -> str:
    """`auto` means nvidia when an API key is set, else the offline draft backend."""
    if requested == "auto":
        return "nvidia" if os.environ.get(API_KEY_VARIABLE) else "draft"
    return requested


def check_backend(name: str) -> None:
    """Fail before any work starts when `name` cannot be used here."""
    if name == "draft":
        return
    if name == "nvidia" and not os.environ.get(API_KEY_VARIABLE):
        raise ConfigurationError(f"--backend nvidia needs {API_KEY_VARIABLE} to be set")
    raise ConfigurationError(
        f"backend '{name}' is not available in this version; use --backend draft"
    )


def backend_for(name: str) -> GenerationBackend:
    """The process-wide backend called `name`, created on first use."""
    with _lock:
        backend = _backends.get(name)
        if backend is None:
            check_backend(name)
            backend = DraftBackend()
            _backends[name] = backend
        return backend
