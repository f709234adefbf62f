"""The one place services are built from the settings: generation backends and Whisper engines.

Adding a backend or an engine is one module beside its siblings and one line in the table
below. Each process builds one instance per configuration and shares it among its tasks, so
one connection pool and one rate limiter (or one loaded model) serve every scene.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from clients.generation import draft, local, nim, nvidia
from clients.generation.backend import BackendKind, GenerationBackend
from clients.generation.ratelimit import PrefectRateLimit, RateLimiter, RequestBudget
from clients.transcription import faster_whisper, openai_whisper
from clients.transcription.types import EngineKind, TranscriptionEngine
from configs.settings import GenerationSettings, TranscriptionSettings
from domain.errors import ConfigurationError
from domain.storyboard import StoryboardSpec

GENERATION_BACKENDS: dict[str, BackendKind] = {
    kind.name: kind for kind in (nvidia.KIND, nim.KIND, local.KIND, draft.KIND)
}
TRANSCRIPTION_ENGINES: dict[str, EngineKind] = {
    kind.name: kind for kind in (faster_whisper.KIND, openai_whisper.KIND)
}


def choose_backend(requested: str) -> str:
    """`auto` means nvidia when an API key is set, else the offline draft backend."""
    if requested == "auto":
        return "nvidia" if nvidia.read_api_key() else "draft"
    return requested


def backend_kind(name: str) -> BackendKind:
    kind = GENERATION_BACKENDS.get(name)
    if kind is None:
        choices = ", ".join(["auto", *GENERATION_BACKENDS])
        raise ConfigurationError(f"unknown backend '{name}' (choose one of {choices})")
    return kind


def check_backend(
    name: str, settings: GenerationSettings, spec: StoryboardSpec | None = None
) -> None:
    """Fail before any work starts when `name` cannot be used here, or (given `spec`) cannot
    make what the storyboard asks for."""
    kind = backend_kind(name)
    kind.check(settings)
    if spec is not None:
        kind.check_storyboard(settings, spec)


def check_backend_ready(name: str) -> None:
    """Before a run starts: the service must answer (FatalServiceError otherwise)."""
    backend_kind(name).check_ready()


def shared_limit_name(backend: str) -> str:
    """The Prefect rate limit every worker of a distributed run draws `backend` requests from."""
    return f"storyboard-{backend}-requests"


def create_backend(
    name: str, settings: GenerationSettings, shared_limit: str | None = None
) -> GenerationBackend:
    """`shared_limit` names the Prefect rate limit that several worker processes share;
    without it the process keeps its own budget of `settings.requests_per_minute`."""
    kind = backend_kind(name)
    kind.check(settings)
    limiter: RequestBudget = RateLimiter(settings.requests_per_minute)
    if shared_limit and kind.paid:
        limiter = PrefectRateLimit(shared_limit, settings.requests_per_minute)
    return kind.create(settings, limiter)


def backend_for(
    name: str, settings: GenerationSettings, shared_limit: str | None = None
) -> GenerationBackend:
    """The process-wide backend for `name` and these settings, created on first use."""
    with _building:
        return _shared_backend(name, settings, shared_limit)


_shared_backend = functools.cache(create_backend)
_building = threading.Lock()


def engine_kind(name: str) -> EngineKind:
    kind = TRANSCRIPTION_ENGINES.get(name)
    if kind is None:
        raise ConfigurationError(f"unknown transcription engine '{name}'")
    return kind


def engine_device(settings: TranscriptionSettings) -> tuple[str, str]:
    """(device, compute type) for these settings on this machine."""
    return engine_kind(settings.engine).device_for(settings)


def load_engine(settings: TranscriptionSettings, models_dir: Path) -> TranscriptionEngine:
    """The process-wide engine for these settings, loaded once and shared by every scene."""
    device, compute_type = engine_device(settings)
    weights = TranscriptionSettings(engine=settings.engine, model=settings.model)
    with _building:
        return _loaded_engine(weights, models_dir, device, compute_type)


@functools.cache
def _loaded_engine(
    weights: TranscriptionSettings, models_dir: Path, device: str, compute_type: str
) -> TranscriptionEngine:
    return engine_kind(weights.engine).create(weights, models_dir, device, compute_type)
