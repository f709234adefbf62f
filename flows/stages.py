"""How the storyboard flow fans scene work out over its task runner, and puts it back together.

Each function here submits tasks and gathers their results; none of them does I/O itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from prefect.futures import PrefectFuture

from clients.storage import CacheLocation
from configs.settings import Settings
from domain.errors import FatalServiceError
from domain.scene import (
    GeneratedMedia,
    Recording,
    SceneFailure,
    SceneOutcome,
    SceneStatus,
    StoryboardPlan,
    Transcript,
)
from flows.artifacts import Progress
from tasks.generate import generate, media_here
from tasks.language import LanguageChoice
from tasks.preflight import RunSetup
from tasks.prompt import ScenePrompt, prompt
from tasks.transcribe import transcribe

Generated = dict[int, GeneratedMedia | SceneFailure]


class StageClock:
    """Wall seconds per stage, for run.json."""

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

    def with_total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self.started, 3)}


def transcribe_scenes(
    plan: StoryboardPlan,
    settings: Settings,
    cache: CacheLocation,
    language: LanguageChoice,
    distributed: bool,
) -> list[Transcript | SceneFailure]:
    """Every recording, `scenes_per_task` scenes to a task, so a cluster's workers share them.

    On Dask, the tasks ask for `dask.transcription_resources` (a GPU, say) from the workers.
    """
    recordings = list(plan.recordings)
    size = settings.transcription.scenes_per_task
    batches = [recordings[start : start + size] for start in range(0, len(recordings), size)]
    resources = settings.dask.transcription_resources if distributed else {}
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


def generate_scenes(
    plan: StoryboardPlan,
    transcripts: Sequence[Transcript | SceneFailure],
    setup: RunSetup,
    settings: Settings,
    refresh: bool,
    only: Sequence[str],
    progress: Progress,
    distributed: bool,
) -> tuple[dict[int, ScenePrompt], Generated]:
    """A prompt, then an image and a clip, for every scene that was heard; by plan index. On
    Dask, the generate tasks ask for `dask.generation_resources` from the workers."""
    frame_size = (settings.assembly.width, settings.assembly.height)
    prompts: dict[int, ScenePrompt] = {}
    futures: dict[int, PrefectFuture[GeneratedMedia | SceneFailure]] = {}
    scenes = enumerate(zip(plan.recordings, transcripts, strict=True))
    with _asking_for(settings.dask.generation_resources if distributed else {}):
        for index, (recording, transcript) in scenes:
            if isinstance(transcript, SceneFailure) or transcript.no_speech:
                progress.advance()
                continue
            prompts[index] = prompt.with_options(task_run_name=f"prompt {recording.scene_id}")(
                recording, transcript, plan.spec, settings.generation, frame_size
            )
            futures[index] = generate.with_options(
                task_run_name=f"generate {recording.scene_id}"
            ).submit(
                recording.scene_id,
                prompts[index].request,
                setup.backend,
                settings.generation,
                setup.cache,
                recording.scene_id in only if only else refresh,
                setup.shared_limit,
            )
    generated: Generated = {}
    for index, future in futures.items():
        generated[index] = future.result()
        progress.advance()
    return prompts, media_here(generated, setup.cache)


def raise_if_refused(generated: Mapping[int, GeneratedMedia | SceneFailure]) -> None:
    """A refused key or exhausted credits stop the run: nothing more can be generated."""
    fatal = next((g for g in generated.values() if isinstance(g, SceneFailure) and g.fatal), None)
    if fatal is not None:
        raise FatalServiceError(fatal.reason)


def scene_outcomes(
    plan: StoryboardPlan,
    transcripts: Sequence[Transcript | SceneFailure],
    prompts: Mapping[int, ScenePrompt],
    generated: Mapping[int, GeneratedMedia | SceneFailure],
) -> list[SceneOutcome]:
    return [
        _outcome(recording, transcript, generated.get(index), prompts.get(index))
        for index, (recording, transcript) in enumerate(
            zip(plan.recordings, transcripts, strict=True)
        )
    ]


def _outcome(
    recording: Recording,
    transcript: Transcript | SceneFailure,
    generated: GeneratedMedia | SceneFailure | None,
    scene_prompt: ScenePrompt | None,
) -> SceneOutcome:
    if isinstance(transcript, SceneFailure):
        return SceneOutcome(recording, transcript.status, error=transcript.reason)
    if transcript.no_speech:
        return SceneOutcome(recording, SceneStatus.NO_SPEECH, transcript=transcript)
    prompt_text = scene_prompt.request.prompt if scene_prompt else ""
    seed = scene_prompt.request.seed if scene_prompt else None
    note = scene_prompt.note if scene_prompt else ""
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
