"""The `storyboard` flow: recordings in, storyboard video, manifest and captions out.

The flow only orchestrates: every step is a task from `tasks/` (or a fan-out of tasks from
`flows/scene_stream.py`), configuration comes in as parameters, and the task runner is the
one the run was started with (`flows/runners.py`). The storyboard is opened once
(`tasks/opening.py`): by the command that started the run, or here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial

from prefect import flow

from clients.cache_pruning import holding
from configs.settings import Settings
from domain.layout import VIDEO_FILE, ReviewEntry
from domain.report import RunReport, ScenePaths
from domain.scene import SceneOutcome
from flows.artifacts import Progress, publish_run_artifacts
from flows.runners import current_task_runner, on_dask
from flows.scene_work import ScenePhase, refreshed_scenes
from flows.scenes import scenes_made
from flows.stages import (
    Generated,
    StageClock,
    as_is,
    raise_if_refused,
    running_beside,
    scene_outcomes,
)
from tasks.assemble import Assembly, assemble, scene_cut
from tasks.cache_bounds import keep_cache_in_bounds, measure_cache
from tasks.generate import planned_image_model
from tasks.handoff import board_ahead, hand_off
from tasks.language import detect_storyboard_language
from tasks.manifest import write_manifest, write_run_report
from tasks.narration_ahead import NarrationAhead, narration_encoded_ahead, narration_of
from tasks.opening import OpenedStoryboard, ingest
from tasks.preflight import RunSetup, preflight
from tasks.publish import publish, run_outputs
from tasks.review import review
from tasks.reviews import read_reviews
from tasks.run_report import build_run_report
from tasks.source_state import check_source_settled
from tasks.target_lease import target_held


@dataclass(frozen=True)
class StoryboardResult:
    target: str
    video: str
    manifest: str
    report: RunReport


@dataclass(frozen=True)
class RenderRequest:
    """What a run of the flow was asked for: its parameters."""

    source: str
    target: str
    settings: Settings
    backend: str = "auto"
    only: list[str] = field(default_factory=list)
    refresh: bool = False
    source_fingerprint: str | None = None
    approve_all: bool = False
    opened: OpenedStoryboard | None = None
    cache_bytes_before: int | None = None


@dataclass(frozen=True)
class StoryboardRun:
    """A run under way: what it was asked, its storyboard, its checked setup, its clocks."""

    request: RenderRequest
    opened: OpenedStoryboard
    setup: RunSetup
    clock: StageClock
    progress: Progress
    cache_bytes_before: int

    @property
    def settings(self) -> Settings:
        return self.opened.settings


@flow(name="storyboard", log_prints=False)
def storyboard(
    source: str,
    target: str,
    settings: Settings,
    backend: str = "auto",
    only: list[str] | None = None,
    refresh: bool = False,
    source_fingerprint: str | None = None,
    approve_all: bool = False,
    opened: OpenedStoryboard | None = None,
    cache_bytes_before: int | None = None,
) -> StoryboardResult:
    """Render the storyboard at `source` into `target` (a folder or an S3 prefix), the only
    run writing `target` meanwhile. `opened`: the storyboard, when the command that starts
    the run has opened it already (a deployment passes only `source`); `cache_bytes_before`:
    the local cache's size when that command began, before its warm-up wrote to it."""
    request = RenderRequest(
        source=source,
        target=target,
        settings=settings,
        backend=backend,
        only=only or [],
        refresh=refresh,
        source_fingerprint=source_fingerprint,
        approve_all=approve_all,
        opened=opened,
        cache_bytes_before=cache_bytes_before,
    )
    with target_held(target), holding(settings.cache_dir):
        return render_storyboard(request)


def render_storyboard(request: RenderRequest) -> StoryboardResult:
    """The flow's steps, in order."""
    clock = StageClock()
    cache_before = request.cache_bytes_before
    if cache_before is None:
        cache_before = measure_cache(request.settings.cache_dir)
    with clock.stage("ingest"):
        opened = ingest(request.source, request.settings, request.opened)
    setup = preflight(opened, request.target, request.backend, request.only, on_dask())
    progress = Progress(opened.plan.name, steps=2 * len(opened.plan.recordings) + 1)
    run = StoryboardRun(request, opened, setup, clock, progress, cache_before)
    with narration_encoded_ahead(narration_of(opened)) as narration_ahead:
        outcomes, generated = make_scenes(run)
        assembled = assemble_scenes(run, outcomes, narration_ahead)
    return write_and_publish(run, outcomes, generated, assembled)


def assemble_scenes(
    run: StoryboardRun, outcomes: list[SceneOutcome], narration_ahead: NarrationAhead
) -> Assembly:
    """The video of `outcomes`: its pictures start while the narration encoded ahead may still
    be ending, and its board is drawn beside it."""
    settings, cache_dir = run.settings.assembly, run.settings.cache_dir
    cuts = [scene_cut(outcome, settings.captions_by_word) for outcome in outcomes]
    # The board needs the scenes and where they sit, not the video: drawn while it encodes.
    board = partial(
        board_ahead,
        title=run.opened.plan.title,
        outcomes=outcomes,
        cuts=cuts,
        settings=settings,
        cache_dir=cache_dir,
    )
    with running_beside(board), run.clock.stage("assemble"):
        return assemble(
            cuts=as_is(cuts),
            settings=settings,
            output=run.setup.target_dir / VIDEO_FILE,
            cache_dir=cache_dir,
            music=run.opened.plan.music,
            narration_ahead=as_is(narration_ahead.pieces_when_done),
        )


def make_scenes(run: StoryboardRun) -> tuple[list[SceneOutcome], Generated]:
    """Every scene transcribed, prompted and generated (approved first when asked), in order;
    a refused key or exhausted credits stop the run here."""
    plan, settings = run.opened.plan, run.settings
    with run.clock.stage("transcribe"):
        language = detect_storyboard_language(
            list(plan.recordings),
            settings.transcription,
            run.setup.cache,
            run.opened.named_language,
        )
    phase = ScenePhase(
        plan=plan,
        setup=run.setup,
        settings=settings,
        language=language,
        refreshed=refreshed_scenes(plan, run.request.refresh, run.request.only),
        progress=run.progress,
        clock=run.clock,
        distributed=on_dask(),
        approve_all=run.request.approve_all,
    )
    scenes = scenes_made(phase)
    raise_if_refused(scenes.generated)
    outcomes = scene_outcomes(
        plan,
        scenes.transcripts,
        scenes.prompts,
        scenes.generated,
        draws_references=run.setup.draws_references,
    )
    return outcomes, scenes.generated


def write_exports(
    run: StoryboardRun, outcomes: list[SceneOutcome], assembled: Assembly
) -> tuple[dict[str, ScenePaths], list[str], dict[str, ReviewEntry]]:
    """The manifest with each scene's files, then the editors' and the board's exports: the
    scenes' published paths, the exports' names, and the reviewers' verdicts they show."""
    setup, settings, plan = run.setup, run.settings, run.opened.plan
    with run.clock.stage("manifest"):
        reviews = read_reviews(run.request.target)
        published = write_manifest(
            outcomes=as_is(outcomes),
            timeline=as_is(assembled.timeline),
            target=setup.target_dir,
            backend=setup.backend,
            image_model=planned_image_model(
                setup.backend, settings.generation, plan.spec.image_model
            ),
            captions_by_word=settings.assembly.captions_by_word,
            reviews=reviews,
        )
        handed = hand_off(
            title=plan.title,
            outcomes=as_is(outcomes),
            timeline=as_is(assembled.timeline),
            published=as_is(published),
            settings=settings.assembly,
            target=setup.target_dir,
            cache_dir=settings.cache_dir,
        )
    return published, [path.name for path in handed], reviews


def write_and_publish(
    run: StoryboardRun, outcomes: list[SceneOutcome], generated: Generated, assembled: Assembly
) -> StoryboardResult:
    """The outputs written, run.json and the review page last, then published in TARGET."""
    request, setup, settings = run.request, run.setup, run.settings
    published, exports, reviews = write_exports(run, outcomes, assembled)
    report = build_run_report(
        plan=run.opened.plan,
        target=request.target,
        backend=setup.backend,
        settings=settings,
        outcomes=outcomes,
        generated=generated,
        stages=run.clock.with_total(),
        task_runner=current_task_runner(),
        source_fingerprint=request.source_fingerprint,
        assembly=assembled.summary(),
    )
    review(
        outcomes=as_is(outcomes),
        timeline=as_is(assembled.timeline),
        published=as_is(published),
        report=report,
        target=setup.target_dir,
        settings=settings.assembly,
        exports=exports,
        cache_dir=settings.cache_dir,
        reviews=reviews,
    )
    cache = keep_cache_in_bounds(settings.cache_dir, settings.cache, run.cache_bytes_before)
    report = replace(report, outputs=run_outputs(exports, published), cache=cache)
    if request.source_fingerprint is not None:  # a render of a folder as a watcher saw it
        check_source_settled(request.source, request.source_fingerprint)
    write_run_report(report, setup.target_dir)
    outputs = publish(setup.target_dir, request.target, report.outputs, setup.previous_outputs)
    run.progress.finish()
    publish_run_artifacts(outcomes, report, outputs.video, outputs.manifest)
    return StoryboardResult(request.target, outputs.video, outputs.manifest, report)
