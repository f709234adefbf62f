"""A storyboard's source as the studio changes it: its recordings, their history, and the
per-scene overrides in storyboard.yaml.

Everything goes through `clients/storage.py`, so a folder and an S3 prefix work alike. The
pipeline stays the one way outputs are made: the studio changes inputs, then asks for a render.

Nothing is deleted without a copy: a replaced recording is first copied to
`.storyboard/history/<scene_id>/<UTC time>-<file name>` (created only if absent, never
overwritten), and only then is the new one written and the old one removed. Ingest and the
watcher ignore dot-folders, so the history is never taken for a scene.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

from clients.storage import Storage
from domain.layout import HISTORY_FOLDER
from domain.storyboard import StoryboardSpec
from studio.errors import StudioError
from studio.storyboard_file import SceneList, edit_scenes, read_spec
from studio.uploads import Recording
from tasks.ingest import is_recording, natural_key

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class SourceState:
    """What a storyboard's source holds now, read as ingest reads it."""

    files: dict[str, str]
    """Scene id -> its recording's file name (a second file with a taken id: its full name)."""
    names: frozenset[str]
    """Every file at the top of the folder."""
    order: tuple[str, ...]
    """The scenes in the order a run renders them, skipped ones in their place."""
    spec: StoryboardSpec | None
    """None when storyboard.yaml does not load (`spec_problem` says why)."""
    spec_problem: str = ""

    def require_spec(self) -> StoryboardSpec:
        if self.spec is None:
            raise StudioError(409, f"fix storyboard.yaml first: {self.spec_problem}")
        return self.spec

    def require_recording(self, scene_id: str) -> str:
        if scene_id not in self.files:
            raise StudioError(409, f"scene '{scene_id}' has no recording in the source")
        return self.files[scene_id]


def read_source(storage: Storage) -> SourceState:
    names = frozenset(item.name for item in storage.list())
    spec, problem = read_spec(storage)
    music = spec.music if spec else None
    files: dict[str, str] = {}
    for name in sorted((n for n in names if is_recording(n) and n != music), key=natural_key):
        stem = PurePosixPath(name).stem
        files[name if stem in files else stem] = name
    listed = [scene.id for scene in spec.scenes if scene.id in files] if spec else []
    order = tuple(dict.fromkeys(listed)) + tuple(i for i in files if i not in listed)
    return SourceState(files, names, order, spec, problem)


class SourceLocks:
    """One lock per storyboard, so two requests never edit the same source at once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")


def keep_in_history(storage: Storage, scene_id: str, name: str) -> str:
    """Copy `name` into the scene's history (never over another copy); its history name."""
    data = storage.read_bytes(name)
    if data is None:
        raise StudioError(409, f"{name} changed in the source meanwhile; reload and try again")
    stamp = utc_stamp()
    for attempt in range(100):
        kept = f"{HISTORY_FOLDER}/{scene_id}/{stamp}{f'-{attempt}' if attempt else ''}-{name}"
        if storage.put_if_absent(kept, data):
            return kept
    raise StudioError(409, f"could not keep a copy of {name} in {HISTORY_FOLDER}")


@dataclass(frozen=True)
class Replaced:
    name: str
    """The recording's file name now."""
    kept: str | None
    """Where the previous recording was kept, in the source."""


def replace_recording(
    storage: Storage, state: SourceState, scene_id: str, recording: Recording
) -> Replaced:
    """The scene's recording replaced by `recording`, named `<scene_id>.<ext>`; the previous
    one kept in history first."""
    old = state.files.get(scene_id)
    new = f"{scene_id}.{recording.extension}"
    if old is None and (not is_recording(new) or "/" in new or "\\" in new):
        raise StudioError(404, f"scene '{scene_id}' cannot be a file name in the source")
    music = state.spec.music if state.spec is not None else None
    clash = sorted(
        name
        for name in state.names - {old, music}
        if is_recording(name) and PurePosixPath(name).stem == scene_id
    )
    if clash:
        raise StudioError(409, f"{clash[0]} also claims scene '{scene_id}': rename one first")
    if new == music:
        raise StudioError(409, f"{new} is the storyboard's music; rename one first")
    kept = keep_in_history(storage, scene_id, old) if old else None
    storage.write_bytes(new, recording.data)
    if old and old != new:
        storage.delete(old)
    return Replaced(new, kept)


def new_scene_id(state: SourceState, after: str) -> str:
    """A scene id no recording, file or listed scene has: `<after>-2`, `<after>-3`, ..."""
    taken = set(state.files) | {PurePosixPath(name).stem for name in state.names}
    taken |= {scene.id for scene in state.require_spec().scenes}
    number = 2
    while f"{after}-{number}" in taken:
        number += 1
    return f"{after}-{number}"


def add_scene(storage: Storage, state: SourceState, after: str, recording: Recording) -> str:
    """A new scene right after `after`: its recording, then its place in storyboard.yaml."""
    state.require_recording(after)
    state.require_spec()
    scene_id = new_scene_id(state, after)
    if not storage.put_if_absent(f"{scene_id}.{recording.extension}", recording.data):
        raise StudioError(409, "another recording took that name meanwhile; try again")
    order = (*state.order, scene_id)
    try:
        edit_scenes(storage, order, lambda scenes: _move_after(scenes, after, scene_id))
    except StudioError:
        storage.delete(f"{scene_id}.{recording.extension}")  # ours, written just now
        raise
    return scene_id


def _move_after(scenes: SceneList, after: str, scene_id: str) -> None:
    scenes.order.remove(scene_id)
    scenes.insert_after(after, scene_id)


def _edit(storage: Storage, state: SourceState, edit: Callable[[SceneList], None]) -> None:
    state.require_spec()
    edit_scenes(storage, state.order, edit)


def random_seed(current: int | None) -> int:
    """A seed other than `current`, from 1 (0 means "random" to the hosted API)."""
    seed = current
    while seed is None or seed == current:
        seed = secrets.randbelow(MAX_SEED) + 1
    return seed


def new_take(
    storage: Storage, state: SourceState, scene_id: str, seed: int | None, prompt: str | None
) -> None:
    """Another take of the scene: its `seed` override set (None leaves it), its `prompt`
    override set ("" returns to the narration, None leaves it)."""
    state.require_recording(scene_id)
    if seed is None and prompt is None:
        raise StudioError(400, "a new take needs a seed or a prompt")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise StudioError(400, f"a seed is a whole number from 0 to {MAX_SEED}")

    def edit(scenes: SceneList) -> None:
        if seed is not None:
            scenes.set(scene_id, "seed", seed)
        if prompt:
            scenes.set(scene_id, "prompt", prompt)
        elif prompt == "":
            scenes.unset(scene_id, "prompt")

    _edit(storage, state, edit)


def set_skip(storage: Storage, state: SourceState, scene_id: str, skip: bool) -> None:
    """Skip the scene (`skip: true`) or bring it back; never every scene skipped."""
    state.require_recording(scene_id)
    spec = state.require_spec()
    skipped = {scene.id for scene in spec.scenes if scene.skip} - {scene_id}
    if skip and all(other in skipped for other in state.order if other != scene_id):
        raise StudioError(409, "every other scene is skipped: a storyboard needs one scene")

    def edit(scenes: SceneList) -> None:
        if skip:
            scenes.set(scene_id, "skip", True)
        else:
            scenes.unset(scene_id, "skip")

    _edit(storage, state, edit)
