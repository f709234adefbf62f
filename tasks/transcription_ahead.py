"""The recordings the transcript cache lacks, read while `storyboard run` waits for its server.

`storyboard run` without a configured Prefect server waits seconds for its temporary one
(`tasks/warm_up.py`). When the storyboard's language is already known (named, or cached from
its first speech: a re-run, a retake), the recordings the cache lacks are read meanwhile, one
at a time in plan order, by the transcribe step's own `cached_transcripts`, and cached as it
caches them. The flow's scene phase takes this over (`take_over_transcription`): the reading
stops after the recording in hand (the first it reads, at least: the flow would read that one
first itself), which is waited for, and what it read counts as this run's transcripts, not
the cache's. A retake's new recording is then read before its flow starts,
in time the command would otherwise spend waiting.

A first run's language is still to be heard, by the flow's own step, which logs what it
heard: nothing is read ahead for it. Only recordings on this machine are read ahead. A
recording that fails is left to the flow's step, which meets it again and reports it.
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.services import load_engine
from clients.storage import CacheLocation
from configs.settings import TranscriptionSettings
from domain.layout import MODELS
from domain.scene import Recording, Transcript
from tasks.language import LanguageChoice, known_storyboard_language
from tasks.opening import OpenedStoryboard
from tasks.transcribe import cached_transcripts, known_transcript, named_scenes, transcript_key


@dataclass(frozen=True)
class TranscriptionSource:
    """What a run transcribes: its recordings, under its settings, in its language."""

    recordings: tuple[Recording, ...]
    settings: TranscriptionSettings
    cache: CacheLocation
    language: LanguageChoice

    def key(self, recording: Recording) -> str:
        return transcript_key(recording, self.settings, self.language)


@dataclass
class ReadAhead:
    """The recordings of `source` read ahead of the flow: their transcripts, and the seconds
    spent reading them."""

    source: TranscriptionSource | None = None
    transcripts: dict[str, Transcript] = field(default_factory=dict)
    """By `TranscriptionSource.key`."""
    read: list[str] = field(default_factory=list)
    """The scenes read, in order."""
    seconds: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    reading: threading.Thread | None = None

    def transcript(self, recording: Recording) -> Transcript | None:
        """The recording's transcript, when it was read ahead."""
        if self.source is None:
            return None
        return self.transcripts.get(self.source.key(recording))

    def finish(self) -> None:
        """Stop after the recording in hand, and wait for it."""
        self.stop.set()
        if self.reading is not None:
            self.reading.join()


_begun: dict[TranscriptionSource, ReadAhead] = {}
"""Readings begun before their flow (`begin_transcription`), until it takes them over."""
_begun_lock = threading.Lock()


def transcription_of(opened: OpenedStoryboard) -> TranscriptionSource | None:
    """What the run of `opened` transcribes; None while its language is still to be heard."""
    settings = opened.settings
    cache = CacheLocation.of(settings)
    recordings = tuple(opened.plan.recordings)
    named = opened.named_language
    language = known_storyboard_language(recordings, settings.transcription, cache, named)
    if language is None:
        return None
    return TranscriptionSource(recordings, settings.transcription, cache, language)


def _read(source: TranscriptionSource, ahead: ReadAhead) -> None:
    """The recordings the cache lacks, in plan order, until `ahead.stop`: the first of them
    is read whenever the reading stops (the flow would read it first itself)."""
    cache, models = source.cache.open(), source.cache.local / MODELS
    for recording in source.recordings:
        if recording.problem or not recording.path.is_file():
            continue
        if known_transcript(cache, recording, source.settings, source.language) is not None:
            continue
        load_engine(source.settings, models)  # loaded once: its load is not the reading's time
        started = time.perf_counter()
        [heard] = cached_transcripts(cache, [recording], source.settings, models, source.language)
        if isinstance(heard, Transcript):
            ahead.transcripts[source.key(recording)] = heard
            ahead.read.append(recording.scene_id)
            ahead.seconds += time.perf_counter() - started
        if ahead.stop.is_set():
            return


def begin_transcription(source: TranscriptionSource) -> ReadAhead:
    """Start reading what the cache lacks of `source`, in the background, for the flow that
    renders it in this process to take over (`take_over_transcription`)."""
    ahead = ReadAhead(source)

    def read() -> None:
        with suppress(Exception):  # left to the flow's step
            _read(source, ahead)

    ahead.reading = threading.Thread(target=read, name="transcription ahead", daemon=False)
    with _begun_lock:
        _begun[source] = ahead
    ahead.reading.start()
    return ahead


def begun_ahead() -> bool:
    """Whether a reading was begun in this process that no flow has taken over yet."""
    with _begun_lock:
        return bool(_begun)


def take_over_transcription(source: TranscriptionSource) -> ReadAhead:
    """What was read ahead of `source` (nothing when no reading was begun for it). Every
    reading begun in this process stops after its recording in hand and is waited for: none
    goes on beside the flow's own."""
    return _finish_every_reading().get(source, ReadAhead())


def stop_reading_ahead() -> None:
    """Stop every reading no flow took over (the run ended before its scenes)."""
    _finish_every_reading()


def _finish_every_reading() -> dict[TranscriptionSource, ReadAhead]:
    with _begun_lock:
        begun = dict(_begun)
        _begun.clear()
    for ahead in begun.values():
        ahead.finish()
    return begun


@task(name="transcribed ahead", cache_policy=NO_CACHE)
def transcribed_ahead(source: TranscriptionSource) -> ReadAhead:
    """The reading begun ahead of the flow, taken over (`take_over_transcription`) in a step of
    the run's own, which names the scenes it read."""
    ahead = take_over_transcription(source)
    if ahead.read:
        get_run_logger().info(
            "transcribed ahead of the flow, while the command started (%.1f s): %s",
            ahead.seconds,
            named_scenes(ahead.read),
        )
    return ahead
