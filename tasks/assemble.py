"""Assemble: every scene, in order, with its narration, into one H.264/AAC storyboard video.

The Prefect task over `tasks.assembly`, which does the work: each scene is rendered into its
own short video-only segment, the narration is encoded once as AAC, and both are joined by
stream copy. Segments and narration are kept in the assembly store under the cache folder, so
a re-run encodes only the scenes that changed, and nothing when none did.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import av
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.media.ffmpeg import probe
from configs.settings import AssemblySettings
from domain.layout import ASSEMBLY
from domain.scene import Recording
from tasks.assembly.render import Assembly, assemble_storyboard, encode_narration_ahead
from tasks.assembly.store import AssemblyStore
from tasks.assembly.timeline import SceneCut, narration_cut, scene_cut

__all__ = ["Assembly", "SceneCut", "assemble", "narration_encoded_ahead", "scene_cut"]


@task(name="assemble", cache_policy=NO_CACHE)
def assemble(
    cuts: list[SceneCut],
    settings: AssemblySettings,
    output: Path,
    cache_dir: Path,
    music: Path | None = None,
    narration_pieces_ahead: int = 0,
) -> Assembly:
    """Render `cuts` into `output`; where each scene sits, and what was encoded for it (the
    narration's pieces encoded ahead of it, `narration_encoded_ahead`, included)."""
    store = AssemblyStore(cache_dir / ASSEMBLY)
    assembly = assemble_storyboard(cuts, settings, output, music, store)
    if narration_pieces_ahead:
        pieces = assembly.narration_pieces_encoded + narration_pieces_ahead
        assembly = replace(assembly, narration_pieces_encoded=pieces)
    logger = get_run_logger()
    if assembly.encoded_nothing:
        logger.info(
            "assembled %d scenes into %s: nothing changed, nothing re-encoded",
            len(cuts),
            output.name,
        )
    else:
        logger.info(
            "assembled %d scenes into %s: %d encoded, %d reused%s",
            len(cuts),
            output.name,
            assembly.segments_encoded,
            assembly.segments_reused,
            ", narration re-encoded" if assembly.track_encoded else "",
        )
    return assembly


def _give_way() -> None:
    """Lower this thread's priority, so that work done ahead gives way to the scenes' own
    (Whisper, the safety screen): on Linux a thread has its own niceness and passes it on to
    the threads and processes (ffmpeg) it starts."""
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


@dataclass
class NarrationAhead:
    """The narration being encoded ahead of the assembly (`narration_encoded_ahead`)."""

    future: Future[int] | None = None

    def pieces_encoded(self) -> int:
        """How many pieces of the narration were encoded ahead (0 when it failed)."""
        if self.future is None or not self.future.done() or self.future.exception():
            return 0
        return self.future.result()


@contextmanager
def narration_encoded_ahead(
    recordings: Sequence[Recording],
    settings: AssemblySettings,
    cache_dir: Path,
    max_recording_s: float,
    music: Path | None = None,
) -> Iterator[NarrationAhead]:
    """While the body runs (the scenes are transcribed and generated), the narration of
    `recordings` is encoded into the assembly store, where the assembly finds it ready: the
    narration depends on the recordings alone, so after a retake the part of the track from
    the new recording on is re-encoded beside the Whisper pass, not after the pictures.
    A recording the transcription will refuse for its length (`max_recording_s`) is its
    placeholder's silence here too, never decoded. Nothing is done ahead when a recording is
    not on this machine; a failure here is left to the assembly, which meets it again and
    reports it."""
    if not all(recording.problem or recording.path.is_file() for recording in recordings):
        yield NarrationAhead()
        return
    store = AssemblyStore(cache_dir / ASSEMBLY)
    pool = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="narration-ahead", initializer=_give_way
    )

    def encode() -> int:
        cuts = [
            narration_cut(recording, _plays(recording, max_recording_s)) for recording in recordings
        ]
        return encode_narration_ahead(cuts, settings, music, store)

    ahead = NarrationAhead(pool.submit(encode))
    try:
        yield ahead
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
