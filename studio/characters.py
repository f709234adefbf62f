"""Characters as the studio shows and changes them: each one's reference pictures and the
scenes of the last render that show it; a reviewer adds a reference or changes one.

A reference picture is checked as a run checks it (`tasks/characters.py:check_reference`:
a PNG, JPEG or WebP picture, at most 20 MB and 4096 px a side). Its name never comes from the
client: it is written as `<name>-reference-<UTC time>.<ext>` beside the recordings (where the
watcher and the listener see it), and only then named in storyboard.yaml (round-trip,
comments kept). The picture it replaces stays where it was: nothing is deleted.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from clients.storage import Storage
from domain.errors import ConfigurationError
from domain.layout import PICTURE_FORMATS, PICTURE_SUFFIXES
from domain.storyboard import MAX_REFERENCES, StoryboardSpec
from studio.errors import StudioError, not_found
from studio.sources import SourceState, utc_stamp
from studio.storyboard_file import edit_storyboard
from tasks.characters import MAX_REFERENCE_BYTES, check_reference


@dataclass(frozen=True)
class CharacterPanel:
    """One character on the storyboard page."""

    name: str
    names: tuple[str, ...]
    """The other words that name it."""
    references: tuple[str, ...]
    scenes: tuple[str, ...]
    """The scenes of the last render that show it."""

    @property
    def has_room(self) -> bool:
        return len(self.references) < MAX_REFERENCES


def character_panels(
    spec: StoryboardSpec | None, rows: Mapping[str, Mapping[str, str]]
) -> list[CharacterPanel]:
    if spec is None:
        return []
    shown = {
        scene_id: set(str(row.get("characters") or "").split(";")) for scene_id, row in rows.items()
    }
    return [
        CharacterPanel(
            name=character.name,
            names=character.names,
            references=character.references,
            scenes=tuple(scene_id for scene_id, names in shown.items() if character.name in names),
        )
        for character in spec.characters
    ]


def is_reference(spec: StoryboardSpec | None, name: str) -> bool:
    """Whether `name` is one of the storyboard's reference pictures: the only files of a
    source the studio serves."""
    if spec is None:
        return False
    named = {reference for character in spec.characters for reference in character.references}
    return name in named and Path(name).suffix.lower() in PICTURE_SUFFIXES


@dataclass(frozen=True)
class Picture:
    data: bytes
    suffix: str


def check_picture(data: bytes, character: str) -> Picture:
    """`data` as a reference picture; StudioError 400 (413 when too large) with the reason."""
    if not data:
        raise StudioError(400, "the picture is empty (0 bytes)")
    if len(data) > MAX_REFERENCE_BYTES:
        raise StudioError(413, f"the picture is over {MAX_REFERENCE_BYTES // 2**20} MB")
    with tempfile.TemporaryDirectory(prefix="storyboard-studio-") as folder:
        (Path(folder) / "upload").write_bytes(data)
        try:
            path = check_reference(Path(folder), "upload", f"character {character}")
        except ConfigurationError as exc:
            raise StudioError(400, str(exc).replace(": upload ", ": the upload ")) from None
        with Image.open(path) as picture:
            suffix = PICTURE_FORMATS[str(picture.format)]
    return Picture(data, suffix)


def set_reference(
    storage: Storage, state: SourceState, character: str, replace: int | None, picture: Picture
) -> str:
    """`picture` as one of `character`'s references: in place of reference `replace` (from 0),
    or added after the others; its file's name in the source."""
    found = state.require_spec().character(character)
    if found is None:
        raise not_found(f"character '{character}'")
    if replace is not None and not 0 <= replace < len(found.references):
        raise StudioError(400, f"{character} has no reference {replace + 1}")
    if replace is None and len(found.references) >= MAX_REFERENCES:
        raise StudioError(409, f"{character} has {MAX_REFERENCES} references: change one instead")
    name = f"{_file_stem(character)}-reference-{utc_stamp()}{picture.suffix}"
    if not storage.put_if_absent(name, picture.data):
        raise StudioError(409, "another picture took that name meanwhile; try again")
    try:
        edit_storyboard(
            storage, lambda document: _name_reference(document, character, replace, name)
        )
    except BaseException:
        storage.delete(name)  # ours, written just now, and named nowhere
        raise
    return name


def _name_reference(document: CommentedMap, character: str, replace: int | None, name: str) -> None:
    for entry in document.get("characters") or ():
        if isinstance(entry, CommentedMap) and entry.get("name") == character:
            references = entry.get("references")
            break
    else:
        references = None
    if not isinstance(references, CommentedSeq) or references.anchor.value is not None:
        raise StudioError(409, f"{character}'s references are not a list of their own here")
    if replace is None:
        references.append(name)
    elif replace < len(references):
        references[replace] = name
    else:
        raise StudioError(409, "storyboard.yaml changed meanwhile: reload and try again")


def _file_stem(character: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", character.lower()).strip("-") or "character"
