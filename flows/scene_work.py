"""What the scene phase works from and makes, shared by the stream (`flows/scene_stream.py`)
and image approval (`flows/approval.py`), which never import each other: the phase's inputs,
decided once (`ScenePhase`: which scenes are generated again, the Dask resources a generation
asks for), how a generation task is submitted, and what the phase made (`SceneResults`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prefect import Task
from prefect.futures import PrefectFuture

from configs.settings import Settings
from domain.approval import SceneImage
from domain.media import ImageRequest
from domain.scene import GeneratedMedia, SceneFailure, StoryboardPlan, Transcript
from flows.artifacts import Progress
from flows.stages import StageClock, asking_for
from tasks.language import LanguageChoice
from tasks.preflight import RunSetup
from tasks.prompt import ScenePrompt

Heard = Transcript | SceneFailure
Made = GeneratedMedia | SceneFailure
_Made = TypeVar("_Made")


def refreshed_scenes(plan: StoryboardPlan, refresh: bool, only: Sequence[str]) -> frozenset[str]:
    """The scenes generated again whatever the cache holds: `--only`'s when it names some,
    else every scene with `--refresh`, else none."""
    if only:
        return frozenset(only)
    return frozenset(r.scene_id for r in plan.recordings) if refresh else frozenset()


@dataclass(frozen=True)
class ScenePhase:
    """The scene phase of one run: its storyboard, setup and settings, and what is decided
    once for every scene."""

    plan: StoryboardPlan
    setup: RunSetup
    settings: Settings
    language: LanguageChoice
    refreshed: frozenset[str]
    progress: Progress
    clock: StageClock
    distributed: bool
    approve_all: bool = False

    @property
    def generation_resources(self) -> dict[str, float]:
        """What a generation task asks Dask for (nothing on the thread runner)."""
        return self.settings.dask.generation_resources if self.distributed else {}

    @property
    def transcription_resources(self) -> dict[str, float]:
        return self.settings.dask.transcription_resources if self.distributed else {}

    def submit(
        self,
        chosen: Task[..., _Made],
        run_name: str,
        scene_id: str,
        request: ImageRequest,
        refresh: bool | None = None,
        **options: Any,
    ) -> PrefectFuture[_Made]:
        """One scene's generation task (`generate`, `generate_image`) submitted, asking Dask
        for the generation resources. `refresh`: whether to ignore the cache (by default,
        whether the scene is one of `refreshed`)."""
        with asking_for(self.generation_resources):
            future: PrefectFuture[_Made] = chosen.with_options(task_run_name=run_name).submit(
                scene_id=scene_id,
                request=request,
                backend_name=self.setup.backend,
                settings=self.settings.generation,
                cache=self.setup.cache,
                refresh=scene_id in self.refreshed if refresh is None else refresh,
                shared_limit=self.setup.shared_limit,
                **options,
            )
        return future


@dataclass
class SceneResults:
    """What the phase made, by plan index."""

    transcripts: list[Heard] = field(default_factory=list)
    prompts: dict[int, ScenePrompt] = field(default_factory=dict)
    generated: dict[int, Made] = field(default_factory=dict)
    images: dict[int, SceneImage] = field(default_factory=dict)
    """Made first, for reviewers to approve before their clips (`generation.approve_images`)."""


def generated(future: PrefectFuture[_Made]) -> _Made | SceneFailure:
    """A generate task's result; a task that failed for good (its retries spent on an outage)
    is that scene's failure, not the run's."""
    made = future.result(raise_on_failure=False)
    if isinstance(made, BaseException):
        reason = str(made) or type(made).__name__
        return SceneFailure(reason, api_calls=getattr(made, "api_calls", 0))
    return made
