"""Preflight: what a run checks before any work starts, the same from the command line and
from a deployment: the backend can be used here, `--only` names scenes of this storyboard, and
the target accepts writes. Nothing is paid for or rendered until these hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.generation.ratelimit import ensure_prefect_rate_limit
from clients.services import backend_kind, check_backend, choose_backend, shared_limit_name
from clients.storage import CacheLocation, S3Storage, is_s3, open_storage
from configs.settings import Settings
from domain.errors import ConfigurationError
from domain.storyboard import StoryboardSpec
from tasks.characters import check_references
from tasks.ingest import SourceFolder, scene_files
from tasks.opening import OpenedStoryboard
from tasks.publish import previous_outputs, staging_folder
from tasks.safety import safety_screen


@dataclass(frozen=True)
class RunSetup:
    """A checked run: its backend, where its outputs are written first, and its cache."""

    backend: str
    target: str
    target_dir: Path
    """The target folder, or for an S3 target the local folder its outputs are staged in."""
    cache: CacheLocation
    shared_limit: str | None = None
    """The Prefect rate limit every worker of a distributed run draws requests from."""
    paid: bool = False
    """Whether the backend's requests spend a budget (and are worth starting early)."""
    previous_outputs: frozenset[str] = frozenset()
    """What the target's previous run wrote there: all this run may delete."""
    draws_references: bool = False
    """Whether the backend draws characters from their reference pictures."""


def check_only(known: Iterable[str], only: Sequence[str], where: str) -> None:
    """ConfigurationError unless every id in `only` is a scene of the storyboard."""
    scene_ids = set(known)
    unknown = [scene_id for scene_id in only if scene_id not in scene_ids]
    if unknown:
        raise ConfigurationError(f"--only: no scene called {', '.join(unknown)} in {where}")


def _location_key(uri: str) -> tuple[str, str]:
    """Where `uri` points, to compare: a folder through its symbolic links, an S3 prefix
    normalised, each ending in "/"."""
    storage = open_storage(uri) if is_s3(uri) else None
    if isinstance(storage, S3Storage):
        return f"s3://{storage.bucket}", f"/{storage.prefix}"
    path = Path(unquote(urlparse(uri).path)) if uri.startswith("file://") else Path(uri)
    return "file", f"{path.expanduser().resolve().as_posix().rstrip('/')}/"


def _inside(inner: str, outer: str) -> bool:
    (inner_scheme, inner_path), (outer_scheme, outer_path) = map(_location_key, (inner, outer))
    return inner_scheme == outer_scheme and inner_path.startswith(outer_path)


def check_apart(source: str, target: str, watching: bool = False) -> None:
    """ConfigurationError unless SOURCE lies outside TARGET (a run would write its outputs
    among the recordings, and remove them as outputs of gone scenes) and, for a command
    that watches SOURCE's sub-folders, TARGET outside SOURCE (its outputs would be watched
    as new storyboards)."""
    if _inside(source, target):
        raise ConfigurationError(
            f"{source} is inside the output location {target}: choose an --out outside the "
            "recordings"
        )
    if watching and _inside(target, source):
        raise ConfigurationError(
            f"the output location {target} is inside the watched {source}: its outputs would "
            "be read as new storyboards; choose an --out outside it"
        )


def check_target(target: str) -> None:
    """StorageError now, before anything is downloaded or paid for, if `target` refuses writes."""
    open_storage(target).check_writable()


def check_run(
    source: SourceFolder, requested_backend: str, only: Sequence[str], settings: Settings
) -> str:
    """The backend a run uses (`auto` resolved), once the source has recordings (and a good
    `scenes:` list and `music:`), `only` names some of them, and the backend can be used
    here."""
    check_only(scene_files(source).by_id, only, source.uri)
    for subject in source.spec.subjects:
        if not (source.folder / subject.path).expanduser().exists():
            raise ConfigurationError(
                f"{source.described}: subject weights {subject.path} not found in {source.folder}"
            )
    check_references(source.folder, source.spec, source.described)
    backend = choose_backend(requested_backend)
    check_backend(backend, settings.generation, source.spec)
    safety_screen(settings.safety, backend, source.spec)  # its blocklist file can be read
    return backend


def motion_text_unread(backend: str, settings: Settings, spec: StoryboardSpec) -> str | None:
    """What to say when the storyboard describes motion that its clips' model cannot read."""
    described = spec.motion_style or any(scene.motion for scene in spec.scenes)
    if not described or backend_kind(backend).follows_motion_text(settings.generation):
        return None
    return (
        "motion: and motion_style: steer a text-steered video model (Wan, LTX-Video on "
        f"--backend local); the {backend} backend's clips follow the picture alone"
    )


@task(name="preflight", cache_policy=NO_CACHE)
def preflight(
    opened: OpenedStoryboard,
    target: str,
    requested_backend: str,
    only: list[str],
    distributed: bool,
) -> RunSetup:
    """Check the run, empty its staging folder and, on Dask, set up the shared request budget.
    The target was checked writable as the run took its lease (tasks/target_lease.py)."""
    settings = opened.settings
    check_apart(opened.folder.uri, target)
    backend = check_run(opened.folder, requested_backend, only, settings)
    if unread := motion_text_unread(backend, settings, opened.folder.spec):
        get_run_logger().info(unread)
    draws = backend_kind(backend).draws_references(settings.generation)
    if opened.folder.spec.characters and not draws:
        get_run_logger().info(
            "the %s backend draws without reference pictures here (an IP-Adapter on an SDXL "
            "or SD 1.x model does, generation.local.ip_adapter, and a reference-editing model "
            "such as FLUX.1 Kontext); characters are named in the manifest only",
            backend,
        )
    target_dir = staging_folder(settings.cache_dir, target) if is_s3(target) else Path(target)
    paid = backend_kind(backend).paid
    shared_limit = None
    if distributed and paid:
        shared_limit = shared_limit_name(backend)
        ensure_prefect_rate_limit(shared_limit, settings.generation.requests_per_minute)
    return RunSetup(
        backend=backend,
        target=target,
        target_dir=target_dir,
        cache=CacheLocation.of(settings),
        shared_limit=shared_limit,
        paid=paid,
        previous_outputs=previous_outputs(target),
        draws_references=draws,
    )
