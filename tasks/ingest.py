"""Ingest: find a storyboard's recordings, put them in order and fingerprint them."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import yaml

from clients.cache import content_key
from clients.cache_pruning import touch
from clients.file_sync import mirror
from clients.media.audio import check_audio
from clients.storage import S3Storage, StoredObject, is_s3, open_storage, safe_name
from configs.settings import default_cache_dir, load_storyboard_spec
from domain.errors import AudioError, ConfigurationError, StorageError
from domain.layout import SOURCES, STORYBOARD_FILE
from domain.scene import Recording, StoryboardPlan
from domain.storyboard import StoryboardSpec

AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".m4a", ".flac", ".ogg", ".webm"})
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts `scene_2` before `scene_10`."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.casefold())
        for part in _DIGITS.split(name)
        if part
    )


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class SourceFolder:
    """A storyboard's recordings as a folder on this machine."""

    folder: Path
    spec: StoryboardSpec
    name: str
    remote: str | None = None
    """The S3 prefix the folder was mirrored from, for S3 sources."""
    spec_location: str = ""
    """Where the storyboard's settings were read from, for messages."""
    ignored: tuple[str, ...] = ()
    """Why each recording of an S3 source that was not mirrored was left out."""

    def uri_of(self, file: Path) -> str:
        """Where a recording came from, as the user named it: a symbolic link stays a link."""
        return (
            open_storage(self.remote).uri_of(file.name) if self.remote else file.absolute().as_uri()
        )

    @property
    def described(self) -> str:
        return self.spec_location or str(self.folder)

    @property
    def uri(self) -> str:
        return self.remote or self.folder.as_uri()


def is_recording(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS


def ignored_recordings(names: Iterable[str]) -> dict[str, str]:
    """Why each file that looks like a recording is not one, by name: hidden, or a name that
    would leave its folder. Said once per run, so that no recording vanishes in silence."""
    reasons = {}
    for name in sorted(names):
        if Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        if name.startswith("."):
            reasons[name] = f"ignored {name!r}: a name that starts with '.' is hidden"
            continue
        try:
            safe_name(name)
        except StorageError as exc:
            reasons[name] = f"ignored {name!r}: {exc}"
    return reasons


def _named_files(storage: S3Storage, listed: list[StoredObject]) -> set[str]:
    """The files a remote storyboard.yaml names beside it (`music:`, the subjects' weights, the
    characters' references and LoRAs), so they are mirrored with the recordings."""
    if not any(item.name == STORYBOARD_FILE for item in listed):
        return set()
    try:
        document = yaml.safe_load(storage.read_bytes(STORYBOARD_FILE) or b"")
    except yaml.YAMLError:
        return set()  # reported properly once the mirrored file is loaded
    if not isinstance(document, dict):
        return set()
    named = [document.get("music")]
    named += [entry.get("path") for entry in _entries(document, "subjects")]
    for character in _entries(document, "characters"):
        references = character.get("references")
        named += [*references] if isinstance(references, list) else []
        named.append(character.get("lora"))
    return {name for name in named if isinstance(name, str)}


def _listed_in_subfolders(storage: S3Storage, named: set[str]) -> list[StoredObject]:
    """The objects of the subfolders that named files sit in (`refs/leo.png`), by their names
    under the storyboard's prefix; a name that leaves its folder is not looked for."""
    folders = set()
    for name in named:
        try:
            folders.add(str(PurePosixPath(safe_name(name)).parent))
        except StorageError:
            continue  # refused, with one line, when the storyboard file is checked
    return [
        replace(item, name=f"{folder}/{item.name}")
        for folder in sorted(folders - {"."})
        for item in storage.child(folder).list()
    ]


def _entries(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = document.get(key)
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


def mirror_s3_source(source: str, cache_dir: Path) -> SourceFolder:
    """Download an S3 storyboard folder into the cache (only what changed) and resolve it."""
    storage = open_storage(source)
    assert isinstance(storage, S3Storage)
    listed = storage.list()
    named = _named_files(storage, listed) | {STORYBOARD_FILE}
    listed += _listed_in_subfolders(storage, named)
    ignored = ignored_recordings(item.name for item in listed)
    objects = [
        item
        for item in listed
        if (is_recording(item.name) or item.name in named) and item.name not in ignored
    ]
    if not any(is_recording(item.name) for item in objects):
        raise ConfigurationError(
            f"{storage.uri}: no recordings found (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    folder = cache_dir / SOURCES / content_key(storage.uri)[:24]
    mirror(storage, objects, folder)
    touch(folder)
    spec_file = folder / STORYBOARD_FILE
    spec = load_storyboard_spec(spec_file) if spec_file.is_file() else StoryboardSpec()
    name = storage.prefix.rstrip("/").rsplit("/", 1)[-1] or storage.bucket
    where = storage.uri_of(STORYBOARD_FILE)
    return SourceFolder(
        folder=folder,
        spec=spec,
        name=name,
        remote=storage.uri,
        spec_location=where,
        ignored=tuple(ignored.values()),
    )


def resolve_source(source: str, cache_dir: Path | None = None) -> SourceFolder:
    """A folder (with an optional storyboard.yaml), a storyboard file naming its folder, or an
    S3 prefix (mirrored into `cache_dir`)."""
    if is_s3(source):
        return mirror_s3_source(source, cache_dir or default_cache_dir())
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() in {".yaml", ".yml"}:
        spec = load_storyboard_spec(path)
        if not spec.source:
            raise ConfigurationError(f"{path}: a storyboard file must name its `source` folder")
        if is_s3(spec.source):
            mirrored = mirror_s3_source(spec.source, cache_dir or default_cache_dir())
            return SourceFolder(mirrored.folder, spec, path.stem, mirrored.remote, str(path))
        folder = (path.parent / spec.source).resolve()
        if not folder.is_dir():
            raise ConfigurationError(f"{path}: source folder {folder} does not exist")
        return SourceFolder(folder, spec, path.stem, spec_location=str(path))
    if path.is_dir():
        spec_file = path / STORYBOARD_FILE
        spec = load_storyboard_spec(spec_file) if spec_file.is_file() else StoryboardSpec()
        return SourceFolder(path.resolve(), spec, path.resolve().name, None, str(spec_file))
    raise ConfigurationError(f"{source}: no such folder or storyboard file")


def find_recordings(folder: Path, music: Path | None = None) -> list[Path]:
    """The folder's audio files but `music`, in natural order; ConfigurationError when there
    are none."""
    files = sorted(
        (
            entry
            for entry in folder.iterdir()
            if entry.is_file() and is_recording(entry.name) and entry != music
        ),
        key=lambda entry: natural_key(entry.name),
    )
    if not files:
        raise ConfigurationError(
            f"{folder}: no recordings found (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    return files


def storyboard_music(source: SourceFolder) -> Path | None:
    """The `music:` file: in the storyboard folder and decodable audio, else
    ConfigurationError."""
    named = source.spec.music
    if not named:
        return None
    try:
        music = source.folder / safe_name(named)
    except StorageError:
        raise ConfigurationError(
            f"{source.described}: music {named!r} must be a file in the storyboard folder"
        ) from None
    if not music.is_file():
        raise ConfigurationError(f"{source.described}: the music file {named!r} is not there")
    try:
        check_audio(music)
    except AudioError as exc:
        raise ConfigurationError(
            f"{source.described}: the music file {named!r} is not usable audio: {exc}"
        ) from None
    return music


@dataclass(frozen=True)
class SceneFiles:
    """A storyboard folder's recordings by scene id, checked against its `scenes:` list."""

    by_id: dict[str, Path]
    problems: dict[str, str]
    """Why a recording cannot become a scene (a duplicate scene id), by scene id."""
    music: Path | None
    warnings: tuple[str, ...]
    """Scenes listed with nothing but an id and no recording: ignored, and said so."""


def _nearest(scene_id: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(scene_id, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_listed_scenes(source: SourceFolder, by_id: Mapping[str, Path]) -> tuple[str, ...]:
    """Warnings for listed scenes that have no recording; ConfigurationError for one that
    has settings, which would otherwise be dropped without a word (a typo in its id)."""
    warnings = []
    for scene in source.spec.scenes:
        if scene.id in by_id:
            continue
        hint = _nearest(scene.id, by_id)
        settings = [
            name for name in ("prompt", "seed", "duration") if getattr(scene, name) is not None
        ]
        if settings:
            raise ConfigurationError(
                f"{source.described}: scene '{scene.id}' has a {' and a '.join(settings)} "
                f"but no recording{hint}"
            )
        warnings.append(
            f"{source.described}: scene '{scene.id}' is listed but has no recording; ignored{hint}"
        )
    return tuple(warnings)


def scene_files(source: SourceFolder) -> SceneFiles:
    """The recordings of a resolved storyboard folder, checked: ConfigurationError for a bad
    `music:` file or a `scenes:` entry whose settings no recording would get."""
    music = storyboard_music(source)
    by_id: dict[str, Path] = {}
    problems: dict[str, str] = {}
    for file in find_recordings(source.folder, music):
        scene_id = file.stem
        if scene_id in by_id:
            problems[file.name] = (
                f"scene id '{scene_id}' is already taken by {by_id[scene_id].name}; rename one"
            )
            scene_id = file.name
        by_id[scene_id] = file
    ignored = source.ignored
    if source.remote is None:
        files = (entry.name for entry in source.folder.iterdir() if entry.is_file())
        ignored = tuple(ignored_recordings(files).values())
    warnings = (*ignored, *_check_listed_scenes(source, by_id))
    return SceneFiles(by_id, problems, music, warnings)


def plan_storyboard(source: str, cache_dir: Path | None = None) -> StoryboardPlan:
    """The plan of the storyboard at `source` (resolved here: `tasks/opening.py` resolves a
    run's source once and plans it with `plan_of`)."""
    return plan_of(resolve_source(source, cache_dir))


def plan_of(resolved: SourceFolder) -> StoryboardPlan:
    """Every recording of a resolved storyboard, in scene order, hashed.

    Order: the scenes listed in storyboard.yaml first, in their order, then the others in
    natural order of their file names. Raises ConfigurationError when there is nothing to render.
    """
    spec, files = resolved.spec, scene_files(resolved)
    by_id = files.by_id
    listed = [scene.id for scene in spec.scenes if scene.id in by_id]
    ordered = listed + [scene_id for scene_id in by_id if scene_id not in listed]
    skipped = tuple(
        scene_id for scene_id in ordered if (s := spec.scene(scene_id)) is not None and s.skip
    )

    recordings: list[Recording] = []
    for scene_id in ordered:
        if scene_id in skipped:
            continue
        file = by_id[scene_id]
        scene_spec = spec.scene(scene_id)
        recordings.append(
            Recording(
                scene_id=scene_id,
                order=len(recordings) + 1,
                path=file,
                source_uri=resolved.uri_of(file),
                sha256=file_sha256(file),
                prompt_override=scene_spec.prompt if scene_spec else None,
                seed_override=scene_spec.seed if scene_spec else None,
                duration_override_s=scene_spec.duration if scene_spec else None,
                language=scene_spec.language if scene_spec else None,
                problem=files.problems.get(scene_id, ""),
            )
        )
    if not recordings:
        raise ConfigurationError(f"{resolved.folder}: every scene is marked skip")
    return StoryboardPlan(
        music=files.music,
        name=resolved.name,
        title=spec.title or resolved.name,
        source_uri=resolved.uri,
        spec=spec,
        recordings=tuple(recordings),
        skipped=skipped,
        warnings=files.warnings,
    )


def recording_here(recording: Recording) -> Path:
    """The recording's file on this machine. A Dask worker on another machine fetches an S3
    recording to the same path (checked against the hash taken at ingest); a local one must be
    on a filesystem every worker mounts at the same path. AudioError otherwise."""
    if recording.path.is_file():
        return recording.path
    if not is_s3(recording.source_uri):
        raise AudioError(f"{recording.path} is not on this worker (use a shared folder or S3)")
    bucket, _, key = recording.source_uri.removeprefix("s3://").partition("/")
    S3Storage(bucket, "").download(unquote(key), recording.path)
    if file_sha256(recording.path) != recording.sha256:
        recording.path.unlink(missing_ok=True)
        raise AudioError("the recording changed in the bucket after the run started")
    return recording.path
