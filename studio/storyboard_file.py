"""`storyboard.yaml` in a storyboard's source, edited round-trip: comments, key order, quoting
and the list's indentation stay as the person wrote them.

Edits are per-scene overrides in its `scenes:` list (the schema is
`domain/storyboard.py:SceneSpec`) and the characters' references (`studio/characters.py`).
The list also orders the scenes (`tasks/ingest.py`: the listed scenes first, then the others
in natural order), so a scene is never listed alone: when it must be listed, every scene not
yet listed is appended in its current place, and the order the pipeline renders stays what it
was. Every edit is validated exactly as a run loads the file before it is written.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from clients.storage import Storage
from configs.settings import load_storyboard_spec
from domain.errors import ConfigurationError
from domain.layout import STORYBOARD_FILE
from domain.storyboard import StoryboardSpec
from studio.errors import StudioError

_LIST_INDENT = re.compile(r"^scenes:[^\n]*\n(?:[ \t]*(?:#[^\n]*)?\n)*( *)- ", re.MULTILINE)
_MAP_INDENT = re.compile(r"^[A-Za-z_][^\n#]*:[ \t]*(?:#[^\n]*)?\n( +)[A-Za-z_]", re.MULTILINE)


def spec_from_text(text: str) -> StoryboardSpec:
    """The spec a run would load from `text`; ConfigurationError as a run would raise it."""
    with tempfile.TemporaryDirectory(prefix="storyboard-studio-") as folder:
        path = Path(folder) / STORYBOARD_FILE
        path.write_text(text, encoding="utf-8")
        try:
            return load_storyboard_spec(path)
        except ConfigurationError as exc:
            raise ConfigurationError(str(exc).replace(str(path), STORYBOARD_FILE)) from None


def read_spec(storage: Storage) -> tuple[StoryboardSpec | None, str]:
    """The storyboard's spec (the defaults when it has no file), or None and why not."""
    data = storage.read_bytes(STORYBOARD_FILE)
    if data is None:
        return StoryboardSpec(), ""
    try:
        return spec_from_text(data.decode("utf-8")), ""
    except (ConfigurationError, UnicodeDecodeError) as exc:
        return None, str(exc)


def _round_trip(text: str) -> YAML:
    """A ruamel.yaml that writes `text`'s way: its scene list's dash offset, its nesting."""
    listed, nested = _LIST_INDENT.search(text), _MAP_INDENT.search(text)
    offset = len(listed.group(1)) if listed else 2
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=len(nested.group(1)) if nested else 2, sequence=offset + 2, offset=offset)
    return yaml


class SceneList:
    """The `scenes:` list of a loaded storyboard.yaml, edited in place."""

    def __init__(self, document: CommentedMap, order: Sequence[str]) -> None:
        self.document = document
        self.order = list(order)

    def _entries(self) -> CommentedSeq:
        scenes = self.document.get("scenes")
        if not isinstance(scenes, CommentedSeq) or (not scenes and scenes.fa.flow_style()):
            scenes = CommentedSeq()
            self.document["scenes"] = scenes
        return scenes

    def _index(self, scene_id: str) -> int | None:
        for index, entry in enumerate(self._entries()):
            if isinstance(entry, dict) and entry.get("id") == scene_id:
                return index
        return None

    def entry(self, scene_id: str) -> CommentedMap:
        """The scene's entry, listing every unlisted scene first (in its place) if need be."""
        index = self._index(scene_id)
        if index is None:
            entries = self._entries()
            listed = {entry.get("id") for entry in entries if isinstance(entry, dict)}
            for other in self.order:
                if other not in listed:
                    entries.append(CommentedMap([("id", other)]))
            index = self._index(scene_id)
        if index is None:
            raise StudioError(404, f"scene '{scene_id}' not found in the source")
        entry = self._entries()[index]
        assert isinstance(entry, CommentedMap)
        return entry

    def set(self, scene_id: str, key: str, value: Any) -> None:
        self.entry(scene_id)[key] = value

    def unset(self, scene_id: str, key: str) -> None:
        """Remove an override; a comment it carried moves to the key before it."""
        entry = self.entry(scene_id)
        if key not in entry:
            return
        keys = list(entry)
        comment = entry.ca.items.pop(key, None)
        del entry[key]
        previous = keys[keys.index(key) - 1] if keys.index(key) > 0 else None
        if comment is not None and previous is not None and previous not in entry.ca.items:
            entry.ca.items[previous] = comment

    def insert_after(self, scene_id: str, new_id: str) -> None:
        self.entry(scene_id)
        index = self._index(scene_id)
        assert index is not None
        self._entries().insert(index + 1, CommentedMap([("id", new_id)]))
        self.order.insert(self.order.index(scene_id) + 1, new_id)


def edit_storyboard(storage: Storage, edit: Callable[[CommentedMap], None]) -> StoryboardSpec:
    """Apply `edit` to the storyboard.yaml document and write the file back, once the result
    loads as a run would load it; StudioError 409 (nothing written) when it would not."""
    data = storage.read_bytes(STORYBOARD_FILE)
    try:
        text = data.decode("utf-8") if data is not None else ""
        yaml = _round_trip(text)
        document = yaml.load(text) if text.strip() else None
    except (UnicodeDecodeError, YAMLError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudioError(409, f"{STORYBOARD_FILE} is not valid YAML: {reason}") from None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap):
        raise StudioError(409, f"{STORYBOARD_FILE}: expected a mapping at the top level")
    edit(document)
    written = io.StringIO()
    yaml.dump(document, written)
    try:
        spec = spec_from_text(written.getvalue())
    except ConfigurationError as exc:
        raise StudioError(409, f"not saved: {exc}") from None
    storage.write_bytes(STORYBOARD_FILE, written.getvalue().encode("utf-8"))
    return spec


def edit_scenes(
    storage: Storage, order: Sequence[str], edit: Callable[[SceneList], None]
) -> StoryboardSpec:
    """Apply `edit` to the storyboard's scene list (as `edit_storyboard`)."""
    return edit_storyboard(storage, lambda document: edit(SceneList(document, order)))
