"""Generate: each scene's image, then its motion clip, through a backend, cached by content."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff

from clients.cache import ContentCache, content_key
from clients.generation.backend import GenerationBackend
from clients.services import backend_for
from clients.storage import CacheLocation
from configs.settings import GenerationSettings
from domain.approval import SceneImage
from domain.errors import (
    ContentFilteredError,
    FatalServiceError,
    OutcomeUnknownError,
    SceneError,
    StoryboardError,
    TransientServiceError,
)
from domain.layout import CLIPS, IMAGES
from domain.media import ClipRequest, ImageRequest, image_extension
from domain.scene import GeneratedMedia, SceneFailure, SceneStatus
from tasks.prompt import motion_prompt

_Result = TypeVar("_Result", GeneratedMedia, SceneImage)
_P = ParamSpec("_P")
_R = TypeVar("_R")


SAID = ("prompt", "prompt_note", "motion_prompt")
"""What a backend says of how it made an image or a clip, kept with it in the cache."""


@dataclass(frozen=True)
class _Made:
    data: bytes
    file_name: str
    seed: int
    api_calls: int
    model: str = ""
    resent: int = 0
    said: dict[str, str] = field(default_factory=dict)
    """What the backend said of how it made it (`prompt` as sent, `prompt_note`), cached."""


@dataclass(frozen=True)
class _Artifact:
    path: Path
    seed: int
    api_calls: int
    from_cache: bool
    model: str = ""
    resent: int = 0
    said: dict[str, str] = field(default_factory=dict)


def _cached_or_generated(
    cache: ContentCache,
    namespace: str,
    key: str,
    refresh: bool,
    produce: Callable[[], _Made],
) -> _Artifact:
    """The cached file for `key`, or what `produce()` made, stored.

    Production holds the entry's lock, so two runs needing the same result pay for it once:
    the second waits, then finds it in the cache. A content-filter refusal is a result too:
    it is remembered, and raised again without a request until `refresh`.
    """
    if not refresh and (hit := _lookup(cache, namespace, key)) is not None:
        return hit
    with cache.lock(namespace, key):
        if not refresh and (hit := _lookup(cache, namespace, key)) is not None:
            return hit
        try:
            made = produce()
        except ContentFilteredError as exc:
            cache.put_json(namespace, key, {"filtered": str(exc)})
            raise
        path = cache.put_file(namespace, key, made.file_name, made.data)
        entry: dict[str, object] = {"file": made.file_name, "seed": made.seed, **made.said}
        if made.model:
            entry["model"] = made.model
        cache.put_json(namespace, key, entry)
    return _Artifact(
        path,
        made.seed,
        made.api_calls,
        from_cache=False,
        model=made.model,
        resent=made.resent,
        said=made.said,
    )


def _lookup(cache: ContentCache, namespace: str, key: str) -> _Artifact | None:
    entry = cache.get_json(namespace, key)
    if entry is None:
        return None
    if "filtered" in entry:
        raise ContentFilteredError(f"{entry['filtered']} (remembered; --refresh asks again)")
    path = cache.get_file(namespace, key, str(entry.get("file", "")))
    if path is None:
        return None
    said = {name: str(entry[name]) for name in SAID if entry.get(name)}
    model = entry.get("model", "")
    return _Artifact(path, int(entry["seed"]), 0, from_cache=True, model=model, said=said)


def _image_key(backend: GenerationBackend, request: ImageRequest) -> str:
    return content_key(IMAGES, backend.name, backend.image_fingerprint(request))


def planned_image_model(backend: str, settings: GenerationSettings, named: str | None) -> str:
    """The image model this run's pictures are drawn by, as the manifest names it (also for a
    scene that never got one): the draft panel, the local pipeline, or the hosted model."""
    if backend == "draft":
        return backend
    if backend == "local":
        return settings.local.image_model or ""
    return named or settings.image_model


def _clip_request(image: Path, request: ImageRequest, settings: GenerationSettings) -> ClipRequest:
    motion = request.motion
    bucket = motion.motion_bucket_id
    return ClipRequest(
        image=image.read_bytes(),
        seed=request.seed,
        cfg_scale=settings.svd_cfg_scale,
        motion_bucket_id=settings.motion_bucket_id if bucket is None else bucket,
        noise_aug_strength=motion.noise_aug_strength,
        frames=motion.frames,
        fps=motion.fps,
        prompt=motion_prompt(request),
        negative_prompt=request.negative_prompt,
        span_s=motion.span_s,
    )


def _clip_key(backend: GenerationBackend, clip_request: ClipRequest) -> str:
    return content_key(CLIPS, backend.name, backend.clip_fingerprint(clip_request))


def _media(
    backend: GenerationBackend, request: ImageRequest, image: _Artifact, clip: _Artifact
) -> GeneratedMedia:
    return GeneratedMedia(
        image_path=image.path,
        clip_path=clip.path,
        seed=image.seed,
        image_model=image.model or backend.image_model_name(request),
        retired_model=request.model if image.model not in ("", request.model) else "",
        backend=backend.name,
        api_calls=image.api_calls + clip.api_calls,
        cache_hits=int(image.from_cache) + int(clip.from_cache),
        possibly_paid_twice=image.resent + clip.resent,
        prompt_sent=image.said.get("prompt", ""),
        prompt_note=image.said.get("prompt_note", ""),
        clip_model=clip.model or backend.clip_model_name(),
        motion_prompt=clip.said.get("motion_prompt", ""),
    )


def cached_media(
    backend: GenerationBackend,
    cache: ContentCache,
    request: ImageRequest,
    settings: GenerationSettings,
) -> GeneratedMedia | None:
    """The scene's image and clip when the cache holds both, without a request or a lock;
    None otherwise (a remembered content-filter refusal too: the generate task reports it)."""
    try:
        image = _lookup(cache, IMAGES, _image_key(backend, request))
        if image is None:
            return None
        clip = _lookup(
            cache, CLIPS, _clip_key(backend, _clip_request(image.path, request, settings))
        )
    except ContentFilteredError:
        return None
    return None if clip is None else _media(backend, request, image, clip)


def _image(
    backend: GenerationBackend, cache: ContentCache, request: ImageRequest, refresh: bool
) -> _Artifact:
    def make_image() -> _Made:
        image = backend.generate_image(request)
        file_name = f"image.{image_extension(image.media_type)}"
        said = {"prompt": image.prompt, "prompt_note": image.prompt_note}
        return _Made(
            data=image.data,
            file_name=file_name,
            seed=image.seed,
            api_calls=image.api_calls,
            model=image.model,
            resent=image.resent,
            said={name: value for name, value in said.items() if value},
        )

    return _cached_or_generated(cache, IMAGES, _image_key(backend, request), refresh, make_image)


def image_key(backend: GenerationBackend, request: ImageRequest) -> str:
    """The cache key of the image `backend` makes for `request` (approvals are kept by it)."""
    return _image_key(backend, request)


def _scene_image(backend: GenerationBackend, request: ImageRequest, image: _Artifact) -> SceneImage:
    return SceneImage(
        image_path=image.path,
        seed=image.seed,
        image_model=image.model or backend.image_model_name(request),
        backend=backend.name,
        api_calls=image.api_calls,
        cache_hits=int(image.from_cache),
        retired_model=request.model if image.model not in ("", request.model) else "",
    )


def cached_image(
    backend: GenerationBackend, cache: ContentCache, request: ImageRequest
) -> SceneImage | None:
    """The scene's image when the cache holds it, without a request or a lock."""
    try:
        image = _lookup(cache, IMAGES, _image_key(backend, request))
    except ContentFilteredError:
        return None
    return None if image is None else _scene_image(backend, request, image)


def generate_media(
    backend: GenerationBackend,
    cache: ContentCache,
    request: ImageRequest,
    settings: GenerationSettings,
    refresh: bool = False,
    image_approved: bool = False,
) -> GeneratedMedia:
    """One scene's image and clip; each is requested only when the cache lacks it.
    `image_approved`: the image is the cached one a reviewer approved, never made again."""
    image = _image(backend, cache, request, refresh and not image_approved)
    clip_request = _clip_request(image.path, request, settings)

    def make_clip() -> _Made:
        clip = backend.generate_clip(clip_request)
        said = {"motion_prompt": clip.prompt}
        return _Made(
            data=clip.data,
            file_name="clip.mp4",
            seed=clip.seed,
            api_calls=clip.api_calls,
            model=clip.model,
            resent=clip.resent,
            said={name: value for name, value in said.items() if value},
        )

    try:
        clip = _cached_or_generated(
            cache, CLIPS, _clip_key(backend, clip_request), refresh, make_clip
        )
    except StoryboardError as exc:
        exc.api_calls += image.api_calls
        raise
    return _media(backend, request, image, clip)


def _retry_when_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    try:
        state.result()
    except TransientServiceError:
        return True
    except Exception:
        return False
    return False


# The client already retries each request with backoff; a generation task's retries are the
# outer safety net for a scene whose attempts all failed (an outage longer than its patience).
def _generation_task(name: str) -> Callable[[Callable[_P, _R]], Task[_P, _R]]:
    return task(
        name=name,
        cache_policy=NO_CACHE,
        retries=2,
        retry_delay_seconds=exponential_backoff(backoff_factor=10),
        retry_jitter_factor=0.5,
        retry_condition_fn=_retry_when_transient,
    )


@_generation_task(name="generate")
def generate(
    scene_id: str,
    request: ImageRequest,
    backend_name: str,
    settings: GenerationSettings,
    cache: CacheLocation,
    refresh: bool = False,
    shared_limit: str | None = None,
    image_approved: bool = False,
) -> GeneratedMedia | SceneFailure:
    """`shared_limit`: the Prefect rate limit to draw requests from when several worker
    processes generate at once (clients/ratelimit.py)."""
    backend = backend_for(backend_name, settings, shared_limit)
    opened = cache.open()
    return _scene_result(
        scene_id,
        lambda: generate_media(
            backend=backend,
            cache=opened,
            request=request,
            settings=settings,
            refresh=refresh,
            image_approved=image_approved,
        ),
    )


@_generation_task(name="generate image")
def generate_image(
    scene_id: str,
    request: ImageRequest,
    backend_name: str,
    settings: GenerationSettings,
    cache: CacheLocation,
    refresh: bool = False,
    shared_limit: str | None = None,
) -> SceneImage | SceneFailure:
    """Just the scene's image, for a reviewer to approve before its clip is paid for."""
    backend = backend_for(backend_name, settings, shared_limit)
    opened = cache.open()
    return _scene_result(
        scene_id, lambda: _scene_image(backend, request, _image(backend, opened, request, refresh))
    )


def _scene_result(scene_id: str, make: Callable[[], _Result]) -> _Result | SceneFailure:
    """What `make()` made, or the scene's failure: filtered, failed, or fatal to the run."""
    logger = get_run_logger()
    try:
        return make()
    except ContentFilteredError as exc:
        logger.warning("%s: filtered: %s", scene_id, exc)
        return SceneFailure(str(exc), SceneStatus.FILTERED, api_calls=exc.api_calls)
    except SceneError as exc:
        logger.warning("%s: %s", scene_id, exc)
        lost = isinstance(exc, OutcomeUnknownError)
        return SceneFailure(
            str(exc), api_calls=exc.api_calls, outcome_unknown=lost, possibly_paid_twice=exc.resent
        )
    except FatalServiceError as exc:
        return SceneFailure(str(exc), api_calls=exc.api_calls, fatal=True)


def on_this_machine(media: GeneratedMedia, cache: ContentCache) -> GeneratedMedia:
    """`media` with its files present here, fetched from the shared cache when a worker on
    another machine generated them."""
    return replace(
        media,
        image_path=cache.ensure_local(media.image_path),
        clip_path=cache.ensure_local(media.clip_path),
    )


@task(name="fetch generated media", cache_policy=NO_CACHE)
def media_here(
    made: dict[int, GeneratedMedia | SceneFailure], cache: CacheLocation
) -> dict[int, GeneratedMedia | SceneFailure]:
    """Every scene's generated files on the machine that assembles them."""
    local = cache.open()
    return {
        index: on_this_machine(item, local) if isinstance(item, GeneratedMedia) else item
        for index, item in made.items()
    }
