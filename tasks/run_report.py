"""The run report: what `run.json` and the Prefect summary say a run did."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from importlib import metadata

from prefect.runtime import flow_run

from configs.settings import Settings
from domain.report import RunReport
from domain.scene import GeneratedMedia, SceneFailure, SceneOutcome, StoryboardPlan
from tasks.manifest import count_statuses

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


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def paid_twice(
    plan: StoryboardPlan, generated: Mapping[int, GeneratedMedia | SceneFailure]
) -> list[str]:
    """The scene of each request sent again after its answer was lost, once per re-send."""
    return [
        plan.recordings[index].scene_id
        for index, made in sorted(generated.items())
        for _ in range(made.possibly_paid_twice)
    ]


def build_run_report(
    plan: StoryboardPlan,
    target: str,
    backend: str,
    settings: Settings,
    outcomes: Sequence[SceneOutcome],
    generated: Mapping[int, GeneratedMedia | SceneFailure],
    stages: dict[str, float],
    task_runner: str,
    source_fingerprint: str | None = None,
    assembly: Mapping[str, int | bool] | None = None,
) -> RunReport:
    """`api_calls` counts every paid request, those of failed scenes included."""
    media = [outcome.media for outcome in outcomes if outcome.media is not None]
    failed_calls = sum(g.api_calls for g in generated.values() if isinstance(g, SceneFailure))
    return RunReport(
        storyboard=plan.name,
        title=plan.title,
        source=plan.source_uri,
        target=target,
        backend=backend,
        draft=backend == "draft",
        engine=settings.transcription.engine,
        model=settings.transcription.model,
        task_runner=task_runner,
        stages=stages,
        scenes=count_statuses(outcomes),
        api_calls=sum(item.api_calls for item in media) + failed_calls,
        cache_hits=sum(item.cache_hits for item in media),
        versions=package_versions(),
        source_fingerprint=source_fingerprint,
        fallbacks={m.retired_model: m.image_model for m in media if m.retired_model},
        unknown_outcomes=[
            plan.recordings[index].scene_id
            for index, made in sorted(generated.items())
            if isinstance(made, SceneFailure) and made.outcome_unknown
        ],
        possibly_paid_twice=paid_twice(plan, generated),
        assembly=dict(assembly or {}),
        flow_run_id=flow_run.get_id(),
    )
