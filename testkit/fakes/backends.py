"""Generation backends for tests: the draft backend, slowed down and counting its calls."""

from __future__ import annotations

import threading
import time

from clients.generation.draft import DraftBackend
from domain.errors import ContentFilteredError
from domain.media import ClipRequest, GeneratedClip, GeneratedImage, ImageRequest


class CountingBackend(DraftBackend):
    """The draft backend, slowed down, counting what it is asked for."""

    def __init__(self, delay_s: float = 0.0, filtered: str = "") -> None:
        super().__init__()
        self.delay_s = delay_s
        self.filtered = filtered
        self.images = 0
        self.clips = 0
        self._lock = threading.Lock()

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        with self._lock:
            self.images += 1
        time.sleep(self.delay_s)
        if self.filtered and self.filtered in request.prompt:
            raise ContentFilteredError("refused")
        image = super().generate_image(request)
        return GeneratedImage(image.data, image.media_type, image.seed, api_calls=1)

    def generate_clip(self, request: ClipRequest) -> GeneratedClip:
        with self._lock:
            self.clips += 1
        clip = super().generate_clip(request)
        return GeneratedClip(clip.data, clip.seed, api_calls=1)
