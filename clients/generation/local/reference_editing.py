"""Characters drawn by a reference-editing image model: FLUX.1 Kontext, FLUX.2 klein or
Qwen-Image-Edit take the scene's reference pictures (`references.py` says which) as their input
pictures, and the prompt says what to make of them. No adapter is needed.

A model takes up to a number of input pictures; where a scene has more, they are laid side by
side, in order, on one sheet (the way Kontext is given several references). A scene with no
character is called without input pictures (a text-to-image call), or, for a model that
cannot be called without one (Qwen-Image-Edit), on a blank white canvas of the scene's size:
either way the picture it would be without `characters:`. A character's strength is an
adapter's scale and plays no part here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from clients.generation.local.references import (
    open_picture,
    reference_digests,
    references_drawn,
)
from domain.media import CharacterReference


@dataclass(frozen=True)
class EditingModel:
    pictures_taken: int
    """How many input pictures it takes at once."""
    needs_picture: bool = False
    """Whether it fails when called without one."""


EDITING_PIPELINES = {
    "FluxKontextPipeline": EditingModel(1),
    "QwenImageEditPipeline": EditingModel(1, needs_picture=True),
    "Flux2KleinPipeline": EditingModel(4),
    "QwenImageEditPlusPipeline": EditingModel(3, needs_picture=True),
}
"""The reference-editing pipelines, by the class `model_index.json` names."""
SHEET_BACKGROUND = (255, 255, 255)
MIN_SIDE = 64
"""The smallest side an input picture may have (FLUX.2 refuses smaller ones): a smaller
reference is scaled up to it."""
SHEET_HEIGHT = 1024
"""At most this tall: every model resizes its input pictures to about a megapixel anyway."""


@dataclass(frozen=True)
class EditingReferences:
    model: EditingModel

    def fingerprint(self, characters: tuple[CharacterReference, ...]) -> dict[str, Any]:
        """Each character's reference bytes, in order of first mention; and, for every scene,
        that the picture is drawn at the scene's size (Kontext drew a megapixel before)."""
        drawn = {"drawn_at": "scene size"}
        if not characters:
            return drawn
        return {**drawn, "characters": [(c.name, reference_digests(c)) for c in characters]}

    def call_options(
        self, pipeline: Any, characters: tuple[CharacterReference, ...], size: tuple[int, int]
    ) -> dict[str, Any]:
        if not characters:
            blank = Image.new("RGB", size, SHEET_BACKGROUND)
            return {"image": blank} if self.model.needs_picture else {}
        pictures = [
            at_least(open_picture(reference), MIN_SIDE)
            for reference in references_drawn(characters)
        ]
        if len(pictures) > self.model.pictures_taken:
            pictures = [reference_sheet(pictures)]
        return {"image": pictures[0] if self.model.pictures_taken == 1 else pictures}


def editing_references(pipeline_name: str) -> EditingReferences | None:
    model = EDITING_PIPELINES.get(pipeline_name)
    return EditingReferences(model) if model is not None else None


def at_least(picture: Image.Image, side: int) -> Image.Image:
    """`picture`, scaled up (keeping its shape) where a side is shorter than `side`."""
    scale = side / min(picture.size)
    if scale <= 1:
        return picture
    size = (round(picture.width * scale), round(picture.height * scale))
    return picture.resize(size, Image.Resampling.LANCZOS)


def reference_sheet(pictures: list[Image.Image]) -> Image.Image:
    """`pictures` side by side, left to right, each scaled to the tallest one's height (at
    most `SHEET_HEIGHT`)."""
    height = min(SHEET_HEIGHT, max(picture.height for picture in pictures))
    scaled = [
        picture.resize((max(1, round(picture.width * height / picture.height)), height))
        for picture in pictures
    ]
    sheet = Image.new("RGB", (sum(p.width for p in scaled), height), SHEET_BACKGROUND)
    left = 0
    for picture in scaled:
        sheet.paste(picture, (left, 0))
        left += picture.width
    return sheet
