"""Scenes as a stream: each scene's generation starts as soon as its own transcript is there.

For a paid backend, transcription runs in batches that grow (1 scene, then 2, 4, 8, 16, then
`scenes_per_task`), so the first request goes out seconds into the run: a refused key stops
it then, and a long storyboard's transcription overlaps its quota-bound generation. For the
draft backend, whose pictures cost nothing and take no time, batches are `scenes_per_task`
long: small ones would only cost Whisper more windows. Between batches, and while
one is running, the stream looks at the generations already done; one that found the service
refusing every request (a refused key, a retired model) ends the stream at once. On the
thread runner one batch is transcribed at a time (the engine is one model behind a lock), so
stopping waits for that batch alone; on Dask every batch is submitted, for every worker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture

from clients.cache import ContentCache
from clients.safety import SafetyScreen
from clients.services import backend_for
from domain.approval import SceneImage
from domain.errors import FatalServiceError
from domain.scene import GeneratedMedia, Recording, SceneFailure, Transcript
from flows.scene_work import Heard, Made, ScenePhase, SceneResults, generated
from flows.signals import signals_outside_serializers
from flows.stages import as_is, asking_for
from tasks.approval import ApprovalBook
from tasks.generate import cached_image, cached_media, generate, generate_image
from tasks.prompt import ScenePrompt, image_request
from tasks.safety import safety_screen, screen_scene, warm_classifier
from tasks.transcribe import known_transcript, named_scenes, reads_any, transcribe
from tasks.transcription_ahead import (
    ReadAhead,
    TranscriptionSource,
    begun_ahead,
    transcribed_ahead,
)

FIRST_BATCHES = (1, 2, 4, 8, 16)
WATCH_INTERVAL_S = 0.2


def transcription_batches(
    recordings: Sequence[Recording], size: int, ramp: bool = True
) -> list[list[Recording]]:
    """`recordings` in order, in batches of `size`; with `ramp`, of 1, 2, 4, 8 and 16 first
    (never more than `size`)."""
    batches, start = [], 0
    sizes = [min(first, size) for first in FIRST_BATCHES] if ramp else []
    while start < len(recordings):
        step = sizes.pop(0) if sizes else size
        batches.append(list(recordings[start : start + step]))
        start += step
    return batches


@dataclass
class _Stream:
    phase: ScenePhase
    screen: SafetyScreen | None
    images_only: bool = False
    taken: int = 0
    futures: dict[int, PrefectFuture[Made]] = field(default_factory=dict)
    image_futures: dict[int, PrefectFuture[SceneImage | SceneFailure]] = field(default_factory=dict)
    looked_at: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.plan, self.settings = self.phase.plan, self.phase.settings
        self.progress = self.phase.progress
        setup = self.phase.setup
        self.cache = setup.cache.open()
        self.backend = backend_for(setup.backend, self.settings.generation, setup.shared_limit)
        self.book = ApprovalBook(self.cache, self.backend)
        self.results = SceneResults(self.plan.recordings)

    def take(self, recording: Recording, transcript: Heard) -> None:
        """One transcript in: its prompt, its screen, then its generation submitted."""
        index, self.taken = self.taken, self.taken + 1
        self.results[index].heard = transcript
        self.progress.advance()
        if isinstance(transcript, SceneFailure) or transcript.no_speech:
            self.progress.advance()
            return
        frame = (self.settings.assembly.width, self.settings.assembly.height)
        # A prompt is a few string operations: made here, not in a task of its own, whose
        # orchestration would cost a long storyboard's re-run more than the prompts do.
        made = image_request(recording, transcript, self.plan.spec, self.settings.generation, frame)
        made = self.latest_take(made)
        if made.note:
            get_run_logger().warning("%s: %s", recording.scene_id, made.note)
        self.results[index].prompt = made
        if blocked := screen_scene(self.screen, recording, transcript, made):
            self.results[index].made = blocked  # the safety screen: no request at all
            self.progress.advance()
            return
        refresh = recording.scene_id in self.phase.refreshed
        if not refresh and (reused := self.reused(made)) is not None:
            self.results[index].made = reused  # no task: nothing to generate
            self.progress.advance()
            return
        if self.images_only:  # the clip waits for the image's approval
            self.take_image(index, recording, made, refresh)
            return
        self.futures[index] = self.phase.submit(
            generate, f"generate {recording.scene_id}", recording.scene_id, made.request
        )

    def latest_take(self, made: ScenePrompt) -> ScenePrompt:
        """The take reviewers moved on to, when they rejected this request's image."""
        request = self.book.latest_take(made.request, self.plan.spec.style)
        return made if request == made.request else replace(made, request=request)

    def take_image(
        self, index: int, recording: Recording, made: ScenePrompt, refresh: bool
    ) -> None:
        """Just the image, for approval: from the cache when it is there, else from a task."""
        image = None if refresh else cached_image(self.backend, self.cache, made.request)
        if image is not None:
            approved = self.book.approved(made.request, image.image_path)
            self.results[index].image = replace(image, approved=approved)
            self.progress.advance()
            return
        self.image_futures[index] = self.phase.submit(
            generate_image, f"generate image {recording.scene_id}", recording.scene_id, made.request
        )

    def reused(self, made: ScenePrompt) -> GeneratedMedia | None:
        """The scene's image and clip when the cache already holds both."""
        return cached_media(self.backend, self.cache, made.request, self.settings.generation)

    def stop_if_refused(self) -> None:
        """FatalServiceError as soon as a finished generation found the service refusing."""
        watched: list[tuple[int, PrefectFuture[Any]]] = [
            *self.futures.items(),
            *self.image_futures.items(),
        ]
        for index, future in watched:
            if index not in self.looked_at and future.state.is_final():
                self.looked_at.add(index)
                made = generated(future)
                if isinstance(made, SceneFailure) and made.fatal:
                    raise FatalServiceError(made.reason)

    def await_batch(self, future: PrefectFuture[list[Heard]]) -> list[Heard]:
        while True:
            future.wait(WATCH_INTERVAL_S)
            self.stop_if_refused()
            if future.state.is_final():
                return future.result()

    def gather(self) -> None:
        for index, future in self.futures.items():
            self.results[index].made = generated(future)
            self.progress.advance()
        for index, image_future in self.image_futures.items():
            image = generated(image_future)
            if isinstance(image, SceneFailure):
                self.results[index].made = image
            else:
                request = self.results.request(index)
                approved = self.book.approved(request, image.image_path)
                self.results[index].image = replace(image, approved=approved)
            self.progress.advance()


def transcribe_and_generate(phase: ScenePhase, images_only: bool = False) -> SceneResults:
    """Every scene transcribed, prompted, screened and generated, in plan order (with
    `images_only`, the images alone: `SceneResults.images`, for approval). On Dask the
    tasks ask for `dask.transcription_resources` and `dask.generation_resources`."""
    plan, settings, setup = phase.plan, phase.settings, phase.setup
    ahead = _read_ahead(phase)
    screen = safety_screen(settings.safety, setup.backend, plan.spec, setup.cache.open())
    warm_classifier(
        screen,
        lambda: reads_any(
            setup.cache.open(), plan.recordings, settings.transcription, phase.language
        ),
    )
    stream = _Stream(phase, screen, images_only)
    began = time.perf_counter()
    with signals_outside_serializers():
        for recording, transcript in _heard_in_order(phase, stream, ahead):
            stream.take(recording, transcript)
        phase.clock.add("transcribe", time.perf_counter() - began)
        stream.gather()
    phase.clock.add("generate", time.perf_counter() - began)
    return stream.results


def _read_ahead(phase: ScenePhase) -> ReadAhead:
    """What `storyboard run` read ahead of the flow, while it started (its Prefect server,
    mostly: `tasks/transcription_ahead.py`), taken over: its seconds are this run's
    `transcribe_ahead` stage, outside its total."""
    if not begun_ahead():
        return ReadAhead()
    source = TranscriptionSource(
        recordings=tuple(phase.plan.recordings),
        settings=phase.settings.transcription,
        cache=phase.setup.cache,
        language=phase.language,
    )
    ahead = transcribed_ahead(as_is(source))
    if ahead.read:
        phase.clock.add("transcribe_ahead", ahead.seconds)
    return ahead


def _heard_in_order(
    phase: ScenePhase, stream: _Stream, ahead: ReadAhead
) -> Iterator[tuple[Recording, Heard]]:
    """Every recording with its transcript, in plan order: one read `ahead` or that this
    machine's cache holds at once, with no task; the others from their batches, each as its
    batch finishes."""
    recordings = phase.plan.recordings
    local = ContentCache(phase.setup.cache.local)  # a shared cache is the tasks' to ask
    settings, language = phase.settings.transcription, phase.language

    def transcript(recording: Recording) -> Transcript | None:
        return ahead.transcript(recording) or known_transcript(local, recording, settings, language)

    known = {
        index: read
        for index, recording in enumerate(recordings)
        if (read := transcript(recording)) is not None
    }
    batches = _Batches(phase, [r for i, r in enumerate(recordings) if i not in known])
    finished: deque[tuple[Recording, Heard]] = deque()
    for index, recording in enumerate(recordings):
        if index in known:
            yield recording, known[index]
            continue
        if not finished and (batch := batches.next()) is not None:
            batch_recordings, future = batch
            heard = stream.await_batch(future)
            batches.taken()
            finished.extend(zip(batch_recordings, heard, strict=True))
        yield finished.popleft()


class _Batches:
    """Transcribe futures of `recordings` in plan order: all submitted at once on Dask; on the
    thread runner the next one is submitted when the one before has finished, so one runs at
    a time."""

    def __init__(self, phase: ScenePhase, recordings: Sequence[Recording]) -> None:
        size = phase.settings.transcription.scenes_per_task
        ramp = phase.setup.paid
        self.pending = deque(transcription_batches(recordings, size, ramp=ramp))
        self.resources = phase.transcription_resources
        self.settings, self.setup, self.language = (
            phase.settings.transcription,
            phase.setup,
            phase.language,
        )
        self.distributed = phase.distributed
        self.running: deque[tuple[list[Recording], PrefectFuture[list[Heard]]]] = deque()
        for _ in range(len(self.pending) if self.distributed else 1):
            self._submit()

    def _submit(self) -> None:
        if not self.pending:
            return
        batch = self.pending.popleft()
        ids = [recording.scene_id for recording in batch]
        shown = named_scenes(ids)
        with asking_for(self.resources):
            future = transcribe.with_options(
                task_run_name=f"transcribe {shown} ({len(ids)} scene{'s' * (len(ids) > 1)})"
            ).submit(batch, self.settings, self.setup.cache, self.language)
        self.running.append((batch, future))

    def next(self) -> tuple[list[Recording], PrefectFuture[list[Heard]]] | None:
        return self.running.popleft() if self.running else None

    def taken(self) -> None:
        """The batch handed out last has finished: on the thread runner, start the next."""
        if not self.distributed:
            self._submit()
