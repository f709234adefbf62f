"""What the scene phase works from and makes, shared by the stream (`flows/scene_stream.py`)
and image approval (`flows/approval.py`), which never import each other: the phase's inputs,
decided once (`ScenePhase`: which scenes are generated again, the Dask resources a generation
asks for), how a generation task is submitted, and what the phase made (`SceneResults`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from prefect import Task
from prefect.futures import PrefectFuture

from configs.settings import Settings
from domain.approval import SceneImage
from domain.media import ImageRequest
from domain.scene import GeneratedMedia, Recording, SceneFailure, StoryboardPlan, Transcript
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
class SceneRecord:
    """One scene through the phase: what was heard, its prompt, its image when it waits for
    approval, and what was made of it (or why nothing was)."""

    recording: Recording
    heard: Heard | None = None
    prompt: ScenePrompt | None = None
    image: SceneImage | None = None
    """Made first, for reviewers to approve before its clip (`generation.approve_images`)."""
    made: Made | None = None
    image_calls: int = 0
    """Requests its images took before approval, every take counted."""

    def settle(self, made: Made, clip_of: SceneImage | None = None) -> None:
        """What was made of the scene after approval, with what its images cost counted in:
        every take's requests, and for a clip made from the approved `clip_of`, that image's
        own cache hit in place of the clip task's reading of it from the cache."""
        made = replace(made, api_calls=made.api_calls + self.image_calls)
        if isinstance(made, GeneratedMedia) and clip_of is not None:
            made = replace(made, cache_hits=made.cache_hits - 1 + clip_of.cache_hits)
        self.made = made


class SceneResults:
    """What the phase made: a record per scene of the plan, in plan order."""

    def __init__(self, recordings: Sequence[Recording]) -> None:
        self.records = [SceneRecord(recording) for recording in recordings]

    def __getitem__(self, index: int) -> SceneRecord:
        return self.records[index]

    def request(self, index: int) -> ImageRequest:
        """The image request of a scene that has a prompt."""
        prompt = self.records[index].prompt
        if prompt is None:
            raise ValueError(f"scene {index} has no prompt")
        return prompt.request

    @property
    def transcripts(self) -> list[Heard]:
        return [record.heard for record in self.records if record.heard is not None]

    @property
    def prompts(self) -> dict[int, ScenePrompt]:
        return {i: r.prompt for i, r in enumerate(self.records) if r.prompt is not None}

    @property
    def generated(self) -> dict[int, Made]:
        return {i: r.made for i, r in enumerate(self.records) if r.made is not None}

    @property
    def images(self) -> dict[int, SceneImage]:
        return {i: r.image for i, r in enumerate(self.records) if r.image is not None}

    def take_made(self, made: dict[int, Made]) -> None:
        """Each scene's result replaced by `made`'s (the media fetched to this machine)."""
        for index, result in made.items():
            self.records[index].made = result


def generated(future: PrefectFuture[_Made]) -> _Made | SceneFailure:
    """A generate task's result; a task that failed for good (its retries spent on an outage)
    is that scene's failure, not the run's."""
    made = future.result(raise_on_failure=False)
    if isinstance(made, BaseException):
        reason = str(made) or type(made).__name__
        return SceneFailure(reason, api_calls=getattr(made, "api_calls", 0))
    return made
