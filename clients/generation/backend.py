"""The generation backend interface: text to image, image to motion clip.

A backend is anything with `generate_image` and `generate_clip`; a `BackendKind` says how to
check, reach and build one from the settings. `clients/services.py` lists the kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from clients.generation.ratelimit import RequestBudget
from configs.settings import GenerationSettings
from domain.media import ClipRequest, GeneratedClip, GeneratedImage, ImageRequest
from domain.storyboard import StoryboardSpec


class GenerationBackend(Protocol):
    name: str

    def image_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        """Everything that determines this backend's image for `request` (the cache key)."""
        ...

    def image_model_name(self, request: ImageRequest) -> str:
        """The model that makes the image, as the manifest names it."""
        ...

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        """Raises ContentFilteredError, GenerationError, Transient- or FatalServiceError."""
        ...

    def clip_fingerprint(self, request: ClipRequest) -> dict[str, Any]:
        """Everything that determines this backend's clip for `request` (the cache key)."""
        ...

    def clip_model_name(self) -> str:
        """What makes the motion clips, as the manifest names it."""
        ...

    def generate_clip(self, request: ClipRequest) -> GeneratedClip: ...


PUSH_IN = "push-in"
"""The clip model's name where a slow push-in over the picture stands in for motion."""


def always_usable(*_: object) -> None:
    """For a backend that needs nothing from its environment."""


@dataclass(frozen=True)
class BackendKind:
    """How to check, reach and build one kind of backend."""

    name: str
    create: Callable[[GenerationSettings, RequestBudget], GenerationBackend]
    check: Callable[[GenerationSettings], None] = always_usable
    """Raise ConfigurationError when the backend cannot be used here (a missing key, URL or
    model), saying where it looked."""
    check_storyboard: Callable[[GenerationSettings, StoryboardSpec], None] = always_usable
    """Raise ConfigurationError when the storyboard asks for what the backend refuses."""
    check_ready: Callable[[], None] = always_usable
    """Raise FatalServiceError when the service does not answer before a run starts."""
    paid: bool = True
    """Whether its requests spend a budget (a rate limit, on Dask shared by every worker)."""
    follows_motion_text: Callable[[GenerationSettings], bool] = lambda settings: False
    """Whether its clips follow a motion prompt (`motion:`, `motion_style:`); SVD's do not."""
    draws_references: Callable[[GenerationSettings], bool] = lambda settings: False
    """Whether its pictures are drawn from the characters' reference pictures."""
