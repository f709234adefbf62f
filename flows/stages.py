"""The storyboard flow's stage clock, work beside its own, Dask resources, and its scenes put
back together.

(The fan-out of scene work is `flows/scene_stream.py`.) Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar, cast

from prefect.utilities.annotations import quote

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
from tasks.prompt import ScenePrompt

Generated = dict[int, GeneratedMedia | SceneFailure]


Passed = TypeVar("Passed")


def as_is(value: Passed) -> Passed:
    """`value` handed to a task as it is: Prefect walks a task's arguments for futures and
    states and rebuilds them, which for a long storyboard's scenes (each transcript's words
    included) costs every task a tenth of a second or more. Only for arguments that hold no
    futures."""
    return cast(Passed, quote(value))


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

    def add(self, name: str, seconds: float) -> None:
        """Count `seconds` more to stage `name` (stages that overlap are timed apart)."""
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 3)

    def with_total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self.started, 3)}


@contextmanager
def running_beside(work: Callable[[], object]) -> Iterator[None]:
    """`work()` on a thread of its own while the body runs, waited for on the way out. What
    it raises is left to the step that does the same work after it (and meets it again)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="beside") as pool:
        pool.submit(work)
        yield


@contextmanager
def asking_for(resources: dict[str, float]) -> Iterator[None]:
    """Tasks submitted inside ask Dask for `resources` on the worker that runs them."""
    if not resources:
        yield
        return
    from dask.base import annotate

    with annotate(resources=resources):
        yield


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
    draws_references: bool = True,
) -> list[SceneOutcome]:
    outcomes = [
        _outcome(recording, transcript, generated.get(index), prompts.get(index))
        for index, (recording, transcript) in enumerate(
            zip(plan.recordings, transcripts, strict=True)
        )
    ]
    if draws_references:
        return outcomes
    return [_without_references(outcome) for outcome in outcomes]


def _without_references(outcome: SceneOutcome) -> SceneOutcome:
    """The scene's note says its picture was not drawn from its characters' references."""
    if not outcome.characters or outcome.media is None:
        return outcome
    said = "drawn without its characters' reference pictures"
    return replace(outcome, note=f"{outcome.note}; {said}" if outcome.note else said)


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
    request = scene_prompt.request if scene_prompt else None
    characters = tuple(c.name for c in request.characters) if request else ()
    if isinstance(generated, SceneFailure):
        return SceneOutcome(
            recording,
            generated.status,
            transcript=transcript,
            prompt=prompt_text,
            seed=seed,
            error=generated.reason,
            note=note,
            characters=characters,
        )
    if generated and generated.retired_model:
        fallback = f"made by {generated.image_model}: {generated.retired_model} is retired"
        note = f"{note}; {fallback}" if note else fallback
    if generated and generated.prompt_note:
        note = f"{note}; {generated.prompt_note}" if note else generated.prompt_note
    return SceneOutcome(
        recording,
        SceneStatus.OK,
        transcript=transcript,
        prompt=generated.prompt_sent or prompt_text if generated else prompt_text,
        seed=seed,
        media=generated,
        note=note,
        characters=characters,
    )
