"""The narration, encoded into the assembly store before the assembly asks for it.

The narration depends on the recordings alone, so it need not wait for the pictures: the flow
encodes it while the scenes are transcribed and generated (`narration_encoded_ahead`), and
`storyboard run` starts it earlier still, while its temporary Prefect server starts
(`begin_narration`, from `tasks/warm_up.py`). The flow then takes over what was begun: it
waits for that work, counts its pieces as this run's, and finds the store holding every piece.
After a retake the part of the track from the new recording on is re-encoded beside the
server's start and the Whisper pass, not after the pictures.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import av

from clients.media.ffmpeg import probe
from configs.settings import AssemblySettings
from domain.layout import ASSEMBLY
from domain.scene import Recording
from tasks.assembly.render import encode_narration_ahead
from tasks.assembly.store import AssemblyStore
from tasks.assembly.timeline import narration_cut
from tasks.opening import OpenedStoryboard


@dataclass(frozen=True)
class NarrationSource:
    """What the narration is made of, and where it is kept."""

    recordings: tuple[Recording, ...]
    settings: AssemblySettings
    cache_dir: Path
    max_recording_s: float
    """A recording longer than the transcription takes is its placeholder's silence."""
    music: Path | None = None

    def on_this_machine(self) -> bool:
        """Whether every recording that may play is a file here (else nothing is done ahead)."""
        return all(recording.problem or recording.path.is_file() for recording in self.recordings)


def narration_of(opened: OpenedStoryboard) -> NarrationSource:
    """The narration of the storyboard `opened`, under its run's settings."""
    settings = opened.settings
    return NarrationSource(
        recordings=tuple(opened.plan.recordings),
        settings=settings.assembly,
        cache_dir=settings.cache_dir,
        max_recording_s=settings.transcription.max_recording_s,
        music=opened.plan.music,
    )


@dataclass
class NarrationAhead:
    """The narration being encoded ahead of the assembly."""

    future: Future[int] | None = None

    def pieces_encoded(self) -> int:
        """How many pieces of the narration were encoded ahead (0 when it failed)."""
        if self.future is None or not self.future.done() or self.future.exception():
            return 0
        return self.future.result()

    def pieces_when_done(self) -> int:
        """`pieces_encoded`, once the encoding ahead has ended."""
        if self.future is not None:
            wait([self.future])
        return self.pieces_encoded()


_begun: dict[NarrationSource, Future[int]] = {}
"""Narrations begun before their flow (`begin_narration`), until it takes them over."""
_begun_lock = threading.Lock()


def _give_way() -> None:
    """Lower this thread's priority, so that work done ahead gives way to the run's own (the
    Prefect server's start, Whisper, the safety screen): on Linux a thread has its own
    niceness and passes it on to the threads and processes (ffmpeg) it starts."""
    if sys.platform == "linux":
        with suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _plays(recording: Recording, max_recording_s: float) -> bool:
    """Whether the recording will play in the video, as far as can be told before it is
    transcribed: ingest did not refuse it, and its container declares a length the
    transcription accepts."""
    if recording.problem:
        return False
    try:
        return probe(recording.path).duration_s <= max_recording_s
    except (OSError, av.FFmpegError):
        return False


def _encode(source: NarrationSource) -> int:
    """The narration of `source` levelled and encoded into its store; the pieces encoded."""
    cuts = [
        narration_cut(recording, _plays(recording, source.max_recording_s))
        for recording in source.recordings
    ]
    store = AssemblyStore(source.cache_dir / ASSEMBLY)
    return encode_narration_ahead(cuts, source.settings, source.music, store)


def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="narration-ahead", initializer=_give_way
    )


def begin_narration(source: NarrationSource) -> NarrationAhead:
    """Start encoding the narration of `source` in the background, for the flow that renders
    it in this process to take over (`narration_encoded_ahead`)."""
    if not source.on_this_machine():
        return NarrationAhead()
    pool = _pool()
    future = pool.submit(_encode, source)
    pool.shutdown(wait=False)
    with _begun_lock:
        _begun[source] = future
    return NarrationAhead(future)


def _taken_over(source: NarrationSource) -> Future[int] | None:
    with _begun_lock:
        return _begun.pop(source, None)


@contextmanager
def narration_encoded_ahead(source: NarrationSource) -> Iterator[NarrationAhead]:
    """While the body runs (the scenes are transcribed and generated), the narration of
    `source` is encoded into the assembly store, where the assembly finds it ready; when it
    was begun earlier (`begin_narration`) that work is taken over, waited for and counted.
    Nothing is done ahead when a recording is not on this machine; a failure here is left to
    the assembly, which meets it again and reports it."""
    begun = _taken_over(source)
    if begun is not None:
        yield NarrationAhead(begun)
        wait([begun])
        return
    if not source.on_this_machine():
        yield NarrationAhead()
        return
    pool = _pool()
    ahead = NarrationAhead(pool.submit(_encode, source))
    try:
        yield ahead
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
