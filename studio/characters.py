"""Characters as the studio shows and changes them: each one's reference pictures and the
scenes of the last render that show it; a reviewer adds a reference or changes one.

A reference picture is checked as a run checks it (`tasks/characters.py:check_reference`:
a picture, at most 20 MB and 4096 px a side) and must be PNG, JPEG or WebP. Its name never
comes from the client: it is written as `characters/<name>-<UTC time>.<ext>` beside the
storyboard, and only then named in storyboard.yaml (round-trip, comments kept). The picture
it replaces stays where it was: nothing is deleted.
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
from domain.storyboard import StoryboardSpec
from studio.errors import StudioError, not_found
from studio.sources import SourceState, utc_stamp
from studio.storyboard_file import edit_storyboard
from tasks.characters import MAX_REFERENCE_BYTES, check_reference

MAX_REFERENCES = 4
PICTURE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
"""The picture formats a reference may be, and the extension each is written with."""
REFERENCE_FOLDER = "characters"


@dataclass(frozen=True)
class CharacterPanel:
    """One character on the storyboard page."""

    name: str
    words: tuple[str, ...]
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
            words=character.names,
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
    return name in named and Path(name).suffix.lower().lstrip(".") in {"png", "jpg", "jpeg", "webp"}


@dataclass(frozen=True)
class Picture:
    data: bytes
    extension: str


def check_picture(data: bytes, character: str) -> Picture:
    """`data` as a reference picture; StudioError 400 (413 when too large) with the reason."""
    if not data:
        raise StudioError(400, "the picture is empty (0 bytes)")
    if len(data) > MAX_REFERENCE_BYTES:
        raise StudioError(413, "the picture is over 20 MB")
    with tempfile.TemporaryDirectory(prefix="storyboard-studio-") as folder:
        (Path(folder) / "upload").write_bytes(data)
        try:
            path = check_reference(Path(folder), "upload", f"character {character}")
        except ConfigurationError as exc:
            raise StudioError(400, str(exc).replace(": upload ", ": the upload ")) from None
        with Image.open(path) as picture:
            kind = str(picture.format)
    if kind not in PICTURE_FORMATS:
        readable = ", ".join(PICTURE_FORMATS)
        raise StudioError(400, f"a {kind} picture is not a reference the models read ({readable})")
    return Picture(data, PICTURE_FORMATS[kind])


def set_reference(
    storage: Storage, state: SourceState, character: str, replace: int | None, picture: Picture
) -> str:
    """`picture` as one of `character`'s references: in place of reference `replace` (from 0),
    or added after the others; its file's name in the source."""
    spec = state.require_spec()
    found = spec.character(character)
    if found is None:
        raise not_found(f"character '{character}'")
    if replace is not None and not 0 <= replace < len(found.references):
        raise StudioError(400, f"{character} has no reference {replace + 1}")
    if replace is None and len(found.references) >= MAX_REFERENCES:
        raise StudioError(409, f"{character} has {MAX_REFERENCES} references: change one instead")
    name = f"{REFERENCE_FOLDER}/{_file_stem(character)}-{utc_stamp()}.{picture.extension}"
    if not storage.put_if_absent(name, picture.data):
        raise StudioError(409, "another picture took that name meanwhile; try again")

    def edit(document: CommentedMap) -> None:
        references = _references_of(document, character)
        if replace is None:
            references.append(name)
        else:
            references[replace] = name

    try:
        edit_storyboard(storage, edit)
    except StudioError:
        storage.delete(name)  # ours, written just now
        raise
    return name


def _references_of(document: CommentedMap, character: str) -> CommentedSeq:
    for entry in document.get("characters") or ():
        if isinstance(entry, CommentedMap) and entry.get("name") == character:
            references = entry.get("references")
            if isinstance(references, CommentedSeq):
                return references
    raise StudioError(409, f"storyboard.yaml changed: {character}'s references are not a list")


def _file_stem(character: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", character.lower()).strip("-") or "character"
