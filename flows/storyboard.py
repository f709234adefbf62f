"""The `storyboard` flow: recordings in, storyboard video, manifest and captions out.

The flow only orchestrates: each stage is a task from `tasks/`, configuration comes in as
parameters, and per-scene work fans out over the task runner.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture

from clients.generation.ratelimit import ensure_prefect_rate_limit
from clients.services import check_backend, choose_backend, shared_limit_name
from clients.storage import CacheLocation, is_s3, open_storage
from configs.settings import Settings
from domain.errors import ConfigurationError, FatalServiceError
from domain.report import RunReport
from domain.scene import (
    GeneratedMedia,
    SceneFailure,
    SceneOutcome,
    SceneStatus,
    StoryboardPlan,
    Transcript,
)
from flows.artifacts import Progress, publish_run_artifacts
from flows.runners import RunnerSpec, build_task_runner, on_dask, parse_task_runner
from tasks.assemble import assemble, scene_cut
from tasks.generate import generate, on_this_machine
from tasks.ingest import ingest
from tasks.language import LanguageChoice, detect_storyboard_language
from tasks.manifest import count_statuses, write_manifest, write_run_report
from tasks.prompt import ScenePrompt, prompt
from tasks.publish import publish, staging_folder
from tasks.review import review
from tasks.transcribe import transcribe

VERSIONED_PACKAGES = (
    "storyboard",
    "prefect",
    "faster-whisper",
    "ctranslate2",
    "moviepy",
    "av",
    "prefect-dask",
    "distributed",
)


@dataclass(frozen=True)
class StoryboardResult:
    target: str
    video: str
    manifest: str
    report: RunReport


class _StageClock:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - began, 3)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _transcribe_all(
    plan: StoryboardPlan,
    settings: Settings,
    cache: CacheLocation,
    language: LanguageChoice,
    runner: RunnerSpec,
) -> list[Transcript | SceneFailure]:
    """Every recording, `scenes_per_task` scenes to a task, so a cluster's workers share them.

    On Dask, the tasks ask for `dask.transcription_resources` (a GPU, say) from the workers.
    """
    recordings = list(plan.recordings)
    size = settings.transcription.scenes_per_task
    batches = [recordings[start : start + size] for start in range(0, len(recordings), size)]
    resources = settings.dask.transcription_resources if runner.distributed else {}
    futures = []
    with _asking_for(resources):
        for batch in batches:
            ids = [recording.scene_id for recording in batch]
            shown = ", ".join(ids[:3]) + (", …" if len(ids) > 3 else "")
            futures.append(
                transcribe.with_options(
                    task_run_name=f"transcribe {shown} ({len(ids)} scenes)"
                ).submit(batch, settings.transcription, cache, language)
            )
    return [transcript for future in futures for transcript in future.result()]


@contextmanager
def _asking_for(resources: dict[str, float]) -> Iterator[None]:
    """Tasks submitted inside ask Dask for `resources` on the worker that runs them."""
    if not resources:
        yield
        return
    from dask.base import annotate

    with annotate(resources=resources):
        yield


def _check_only(plan: StoryboardPlan, only: list[str]) -> None:
    known = {recording.scene_id for recording in plan.recordings}
    unknown = [scene_id for scene_id in only if scene_id not in known]
    if unknown:
        raise ConfigurationError(f"--only: no scene called {', '.join(unknown)} in this storyboard")


def _outcome(
    plan_index: int,
    plan: StoryboardPlan,
    transcript: Transcript | SceneFailure,
    generated: GeneratedMedia | SceneFailure | None,
    scene_prompt: ScenePrompt | None,
) -> SceneOutcome:
    recording = plan.recordings[plan_index]
    prompt_text = scene_prompt.request.prompt if scene_prompt else ""
    seed = scene_prompt.request.seed if scene_prompt else None
    note = scene_prompt.note if scene_prompt else ""
    if isinstance(transcript, SceneFailure):
        return SceneOutcome(recording, transcript.status, error=transcript.reason)
    if transcript.no_speech:
        return SceneOutcome(recording, SceneStatus.NO_SPEECH, transcript=transcript)
    if isinstance(generated, SceneFailure):
        return SceneOutcome(
            recording,
            generated.status,
            transcript=transcript,
            prompt=prompt_text,
            seed=seed,
            error=generated.reason,
            note=note,
        )
    return SceneOutcome(
        recording,
        SceneStatus.OK,
        transcript=transcript,
        prompt=prompt_text,
        seed=seed,
        media=generated,
        note=note,
    )


@flow(name="storyboard", log_prints=False)
def storyboard(
    source: str,
    target: str,
    settings: Settings,
    backend: str = "auto",
    only: list[str] | None = None,
    refresh: bool = False,
    task_runner: str = "thread",
    source_fingerprint: str | None = None,
) -> StoryboardResult:
    """Render the storyboard at `source` into `target` (a folder or an S3 prefix)."""
    runner = parse_task_runner(task_runner)
    if runner.distributed and not on_dask():
        # A deployment names its task runner as a parameter, but a flow run's runner is fixed
        # when it starts: the storyboard is rendered by a subflow run on the runner asked for.
        return storyboard.with_options(task_runner=build_task_runner(runner, settings))(
            source, target, settings, backend, only, refresh, task_runner, source_fingerprint
        )
    logger = get_run_logger()
    clock = _StageClock()
    backend = choose_backend(backend)
    check_backend(backend)
    open_storage(target).check_writable()
    target_dir = staging_folder(settings.cache_dir, target) if is_s3(target) else Path(target)
    only = only or []
    cache = CacheLocation(settings.cache_dir, settings.shared_cache)

    with clock.stage("ingest"):
        plan = ingest(source, settings.cache_dir)
        _check_only(plan, only)
    logger.info("%s: %d scenes from %s", plan.name, len(plan.recordings), plan.source_uri)
    progress = Progress(plan.name, steps=2 * len(plan.recordings) + 1)

    with clock.stage("transcribe"):
        named = plan.spec.language or settings.transcription.language
        language = detect_storyboard_language(
            list(plan.recordings), settings.transcription, cache, named
        )
        transcripts = _transcribe_all(plan, settings, cache, language, runner)
        progress.advance(len(transcripts))

    frame_size = (settings.assembly.width, settings.assembly.height)
    shared_limit = None
    if runner.distributed and backend != "draft":
        shared_limit = shared_limit_name(backend)
        ensure_prefect_rate_limit(shared_limit, settings.generation.requests_per_minute)
    with clock.stage("generate"):
        prompts: dict[int, ScenePrompt] = {}
        generate_futures: dict[int, PrefectFuture[GeneratedMedia | SceneFailure]] = {}
        for index, (recording, transcript) in enumerate(
            zip(plan.recordings, transcripts, strict=True)
        ):
            if isinstance(transcript, SceneFailure) or transcript.no_speech:
                progress.advance()
                continue
            scene_prompt = prompt.with_options(task_run_name=f"prompt {recording.scene_id}")(
                recording, transcript, plan.spec, settings.generation, frame_size
            )
            prompts[index] = scene_prompt
            scene_refresh = recording.scene_id in only if only else refresh
            generate_futures[index] = generate.with_options(
                task_run_name=f"generate {recording.scene_id}"
            ).submit(
                recording.scene_id,
                scene_prompt.request,
                backend,
                settings.generation,
                cache,
                scene_refresh,
                shared_limit,
            )
        generated: dict[int, GeneratedMedia | SceneFailure] = {}
        local_cache = cache.open()
        for index, generating in generate_futures.items():
            made = generating.result()
            if isinstance(made, GeneratedMedia):
                made = on_this_machine(made, local_cache)
            generated[index] = made
            progress.advance()
    fatal = next((g for g in generated.values() if isinstance(g, SceneFailure) and g.fatal), None)
    if fatal is not None:
        raise FatalServiceError(fatal.reason)

    outcomes = [
        _outcome(index, plan, transcript, generated.get(index), prompts.get(index))
        for index, transcript in enumerate(transcripts)
    ]

    video = target_dir / "storyboard.mp4"
    with clock.stage("assemble"):
        cuts = [scene_cut(outcome) for outcome in outcomes]
        timeline = assemble(cuts, settings.assembly, video, plan.music)

    image_model = plan.spec.image_model or settings.generation.image_model
    with clock.stage("manifest"):
        published = write_manifest(outcomes, timeline, target_dir, backend, image_model)

    media = [outcome.media for outcome in outcomes if outcome.media is not None]
    failed_calls = sum(g.api_calls for g in generated.values() if isinstance(g, SceneFailure))
    report = RunReport(
        storyboard=plan.name,
        title=plan.title,
        source=plan.source_uri,
        target=target,
        backend=backend,
        draft=backend == "draft",
        engine=settings.transcription.engine,
        model=settings.transcription.model,
        task_runner=str(runner),
        stages={**clock.seconds, "total": clock.total()},
        scenes=count_statuses(outcomes),
        api_calls=sum(item.api_calls for item in media) + failed_calls,
        cache_hits=sum(item.cache_hits for item in media),
        versions=package_versions(),
        source_fingerprint=source_fingerprint,
    )
    aspect = settings.assembly.width / settings.assembly.height
    review(outcomes, timeline, published, report, target_dir, aspect)
    write_run_report(report, target_dir)
    if is_s3(target):
        publish(target_dir, target)
    remote = open_storage(target) if is_s3(target) else None
    result = StoryboardResult(
        target=target,
        video=remote.uri_of("storyboard.mp4") if remote else str(video),
        manifest=remote.uri_of("manifest.csv") if remote else str(target_dir / "manifest.csv"),
        report=report,
    )
    progress.finish()
    publish_run_artifacts(outcomes, report, result.video, result.manifest)
    return result
