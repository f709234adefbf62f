"""The `storyboard` flow: recordings in, storyboard video, manifest and captions out.

The flow only orchestrates: every step is a task from `tasks/` (or a fan-out of tasks from
`flows/stages.py`), configuration comes in as parameters, and the task runner is the one the
run was started with (`flows/runners.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from prefect import flow

from configs.settings import Settings, apply_storyboard_settings
from domain.report import RunReport
from flows.approval import scenes_made
from flows.artifacts import Progress, publish_run_artifacts
from flows.runners import current_task_runner, on_dask
from flows.stages import StageClock, raise_if_refused, scene_outcomes
from tasks.assemble import assemble, scene_cut
from tasks.generate import planned_image_model
from tasks.handoff import hand_off
from tasks.ingest import ingest
from tasks.language import detect_storyboard_language
from tasks.manifest import write_manifest, write_run_report
from tasks.preflight import preflight
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
) -> StoryboardResult:
    """Render the storyboard at `source` into `target` (a folder or an S3 prefix), the only
    run writing `target` meanwhile."""
    with target_held(target):
        return render_storyboard(
            source=source, target=target, settings=settings, backend=backend, only=only,
            refresh=refresh, source_fingerprint=source_fingerprint, approve_all=approve_all,
        )  # fmt: skip


def render_storyboard(
    source: str,
    target: str,
    settings: Settings,
    backend: str,
    only: list[str] | None,
    refresh: bool,
    source_fingerprint: str | None,
    approve_all: bool,
) -> StoryboardResult:
    """The flow's steps, in order."""
    clock, only = StageClock(), only or []
    setup = preflight(source, target, backend, only, settings, on_dask())
    with clock.stage("ingest"):
        plan = ingest(source, settings.cache_dir)
    settings = apply_storyboard_settings(settings, plan.spec.settings, plan.source_uri)
    progress = Progress(plan.name, steps=2 * len(plan.recordings) + 1)

    with clock.stage("transcribe"):
        named = plan.spec.language or settings.transcription.language
        language = detect_storyboard_language(
            list(plan.recordings), settings.transcription, setup.cache, named
        )
    scenes = scenes_made(
        plan, setup, settings, language, refresh, only, progress, clock, approve_all
    )
    raise_if_refused(scenes.generated)
    outcomes = scene_outcomes(plan, scenes.transcripts, scenes.prompts, scenes.generated)

    video, folder = setup.target_dir / "storyboard.mp4", setup.target_dir
    with clock.stage("assemble"):
        cuts = [scene_cut(o, settings.assembly.captions_by_word) for o in outcomes]
        assembled = assemble(cuts, settings.assembly, video, settings.cache_dir, plan.music)
    image_model = planned_image_model(setup.backend, settings.generation, plan.spec.image_model)
    with clock.stage("manifest"):
        reviews = read_reviews(target)
        published = write_manifest(
            outcomes, assembled.timeline, folder, setup.backend, image_model,
            settings.assembly.captions_by_word, reviews,
        )  # fmt: skip
        handed = hand_off(
            plan.title, outcomes, assembled.timeline, published, settings.assembly, folder,
            settings.cache_dir,
        )  # fmt: skip

    report = build_run_report(
        plan, target, setup.backend, settings, outcomes, scenes.generated, clock.with_total(),
        current_task_runner(), source_fingerprint, assembled.summary(),
    )  # fmt: skip
    review(
        outcomes, assembled.timeline, published, report, folder, settings.assembly,
        [path.name for path in handed], settings.cache_dir, reviews,
    )  # fmt: skip
    report = replace(report, outputs=run_outputs([path.name for path in handed], published))
    check_source_settled(source, source_fingerprint)
    write_run_report(report, folder)
    outputs = publish(folder, target, report.outputs, setup.previous_outputs)
    progress.finish()
    publish_run_artifacts(outcomes, report, outputs.video, outputs.manifest)
    return StoryboardResult(target, outputs.video, outputs.manifest, report)
