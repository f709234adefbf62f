"""Characters drawn by an IP-Adapter (`generation.local.ip_adapter`, a folder with
`ip-adapter.safetensors` and its CLIP image encoder in `image_encoder/`, never downloaded) on an
SDXL or SD 1.x pipeline (`references.py` says which pictures a scene is drawn from).

A scene with one character gets its references as image prompts at the character's strength; a
scene with several gets one picture each, masked to its own strip of the frame, left to right.
A scene with none runs with the adapter unloaded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from clients.generation.local.models import folder_digest
from clients.generation.local.references import (
    open_picture,
    reference_digests,
    references_drawn,
)
from domain.errors import ConfigurationError
from domain.media import CharacterReference

ADAPTER_WEIGHTS = ("ip-adapter.safetensors", "ip-adapter.bin")
ENCODER_FOLDER = "image_encoder"
ADAPTER_PIPELINES = ("StableDiffusionXLPipeline", "StableDiffusionPipeline")
"""The image pipelines an IP-Adapter of this layout fits."""


@dataclass(frozen=True)
class ReferenceAdapter:
    folder: Path

    @property
    def weights(self) -> str:
        found = [name for name in ADAPTER_WEIGHTS if (self.folder / name).is_file()]
        if not found or not (self.folder / ENCODER_FOLDER).is_dir():
            raise ConfigurationError(
                f"generation.local.ip_adapter {self.folder}: needs {ADAPTER_WEIGHTS[0]} and "
                f"its image encoder in {ENCODER_FOLDER}/"
            )
        return found[0]

    @property
    def identity(self) -> str:
        return folder_digest(self.folder)


def reference_adapter(setting: str | None) -> ReferenceAdapter | None:
    if setting is None:
        return None
    adapter = ReferenceAdapter(Path(setting).expanduser().resolve())
    _ = adapter.weights  # there and complete, or one line naming what is missing
    return adapter


class AdapterSlot:
    """The adapter on one pipeline: loaded for scenes with characters, unloaded for the others."""

    def __init__(self, adapter: ReferenceAdapter) -> None:
        self.adapter = adapter
        self.loaded = False
        self._lock = threading.Lock()

    def fingerprint(self, characters: tuple[CharacterReference, ...]) -> dict[str, Any]:
        """Each character's reference bytes and strength, in order of first mention, and the
        adapter's identity."""
        if not characters:
            return {}
        drawn = [(c.name, reference_digests(c), c.strength) for c in characters]
        return {"characters": drawn, "ip_adapter": self.adapter.identity}

    def call_options(
        self, pipeline: Any, characters: tuple[CharacterReference, ...], size: tuple[int, int]
    ) -> dict[str, Any]:
        """The pipeline call's options for a scene with these characters (none: no adapter)."""
        with self._lock:
            if not characters:
                if self.loaded:
                    pipeline.unload_ip_adapter()
                    self.loaded = False
                return {}
            if not self.loaded:
                pipeline.load_ip_adapter(
                    str(self.adapter.folder),
                    subfolder="",
                    weight_name=self.adapter.weights,
                    image_encoder_folder=ENCODER_FOLDER,
                )
                self.loaded = True
        pictures = [open_picture(reference) for reference in references_drawn(characters)]
        if len(characters) == 1:
            pipeline.set_ip_adapter_scale(characters[0].strength)
            return {"ip_adapter_image": [pictures]}
        pipeline.set_ip_adapter_scale([[c.strength for c in characters]])
        return {
            "ip_adapter_image": [pictures],
            "cross_attention_kwargs": {"ip_adapter_masks": [side_masks(len(characters), size)]},
        }


def side_masks(count: int, size: tuple[int, int]) -> Any:
    """`count` masks of equal vertical strips, left to right, as IP-Adapter's masks."""
    from diffusers.image_processor import IPAdapterMaskProcessor

    width, height = size
    masks = []
    for index in range(count):
        mask = Image.new("L", size, 0)
        mask.paste(255, (index * width // count, 0, (index + 1) * width // count, height))
        masks.append(mask)
    processed = IPAdapterMaskProcessor().preprocess(masks, height=height, width=width)
    return processed.reshape(1, count, processed.shape[2], processed.shape[3])
