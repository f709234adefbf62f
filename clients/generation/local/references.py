"""Characters from reference pictures on `--backend local`: one abstraction, two ways of
drawing them, chosen by the kind of image model (`backend.py:reference_drawing`).

- `ip_adapter.py`: an SDXL or SD 1.x pipeline with an IP-Adapter (`generation.local.ip_adapter`)
  takes the references as image prompts.
- `reference_editing.py`: a reference-editing pipeline (FLUX.1 Kontext, FLUX.2 klein,
  Qwen-Image-Edit) takes them as its input pictures.

Either way a scene with one character is drawn from all of its references, and a scene with
several from each one's first reference, in order of first mention (left to right). A scene
with none is drawn exactly as it would be without `characters:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from clients.generation.local.models import file_digest
from domain.media import CharacterReference


class ReferenceDrawing(Protocol):
    def fingerprint(self, characters: tuple[CharacterReference, ...]) -> dict[str, Any]:
        """What of a scene's characters shapes its picture (empty: none do)."""
        ...

    def call_options(
        self, pipeline: Any, characters: tuple[CharacterReference, ...], size: tuple[int, int]
    ) -> dict[str, Any]:
        """The pipeline call's options for a scene with these characters (none: no options)."""
        ...


def references_drawn(characters: tuple[CharacterReference, ...]) -> list[str]:
    """The reference pictures a scene is drawn from: all of a lone character's, else each
    character's first, in order of first mention."""
    if len(characters) == 1:
        return list(characters[0].references)
    return [character.references[0] for character in characters]


def reference_digests(character: CharacterReference) -> list[str]:
    return [file_digest(Path(reference)) for reference in character.references]


def open_picture(path: str) -> Image.Image:
    with Image.open(path) as picture:
        converted: Image.Image = picture.convert("RGB")
    return converted
