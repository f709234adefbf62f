"""Characters (`characters:` in storyboard.yaml): which scenes use which, and their reference
pictures checked before any work.

A scene uses the characters its own `characters: [...]` lists, or else those its narration or
prompt names (a character's `name` or one of its `names`, as whole words, any case), in the
order they are first named: the first named is drawn on the left when a scene has two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from domain.errors import ConfigurationError
from domain.layout import PICTURE_FORMATS
from domain.storyboard import CharacterSpec, StoryboardSpec

MAX_REFERENCE_BYTES = 20 * 1024 * 1024
MAX_REFERENCE_SIDE = 4096


def _mention(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(word.strip())}(?!\w)", re.IGNORECASE)


def first_mention(character: CharacterSpec, text: str) -> int | None:
    """Where in `text` the character is first named, or None."""
    found = [
        match.start()
        for word in character.words
        if word.strip() and (match := _mention(word).search(text))
    ]
    return min(found) if found else None


def scene_characters(spec: StoryboardSpec, scene_id: str, text: str) -> tuple[str, ...]:
    """The names of the characters in the scene: its own list, else those `text` (its
    narration or prompt) names, in order of first mention."""
    scene = spec.scene(scene_id)
    if scene is not None and scene.characters is not None:
        return scene.characters
    named = [
        (position, character.name)
        for character in spec.characters
        if (position := first_mention(character, text)) is not None
    ]
    return tuple(name for _, name in sorted(named))


def named_files(spec: StoryboardSpec) -> set[str]:
    """The files beside the storyboard its characters name (references and LoRAs)."""
    files = {reference for character in spec.characters for reference in character.references}
    return files | {character.lora for character in spec.characters if character.lora}


def check_references(folder: Path, spec: StoryboardSpec, where: str) -> None:
    """ConfigurationError (exit 2, one line) for the first reference that is missing, outside
    the storyboard's folder, too large, or not a picture."""
    for character in spec.characters:
        for name in character.references:
            check_reference(folder, name, f"{where}: character {character.name}")
        if character.lora:
            inside(folder, character.lora, f"{where}: character {character.name}")


def inside(folder: Path, name: str, what: str) -> Path:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ConfigurationError(f"{what}: {name} is outside the storyboard's folder")
    if not path.exists():
        raise ConfigurationError(f"{what}: {name} not found in {folder}")
    return path


def check_reference(folder: Path, name: str, what: str) -> Path:
    path = inside(folder, name, what)
    if path.stat().st_size > MAX_REFERENCE_BYTES:
        raise ConfigurationError(f"{what}: {name} is over {MAX_REFERENCE_BYTES // 2**20} MB")
    try:
        with Image.open(path) as picture:
            width, height = picture.size
            kind = str(picture.format)
            picture.verify()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise ConfigurationError(f"{what}: {name} is not a picture") from None
    if max(width, height) > MAX_REFERENCE_SIDE:
        raise ConfigurationError(f"{what}: {name} is over {MAX_REFERENCE_SIDE} px a side")
    if kind not in PICTURE_FORMATS:
        raise ConfigurationError(
            f"{what}: {name} is a {kind} picture; references are PNG, JPEG or WebP"
        )
    return path


def characters_used(spec: StoryboardSpec, names: Iterable[str]) -> tuple[CharacterSpec, ...]:
    found = (spec.character(name) for name in names)
    return tuple(character for character in found if character is not None)
