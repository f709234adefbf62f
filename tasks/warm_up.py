"""What a run will load, loaded while its Prefect server starts.

`storyboard run` without a configured server waits seconds for its temporary one. Meanwhile
what the run will need is loaded: the board's PDF library (a run that changes anything draws
its board), and, into the process-wide places its steps take them from, the Whisper engine
(`clients/services.py:load_engine`) when the run will detect the storyboard's language or read
a recording the cache does not hold, and the safety classifier
(`clients/safety.py:profanity_classifier`) when those readings will be screened, and then a
blank board with its fonts read (`tasks/board_sheet.py`), since a new transcript redraws the
board. With the engine, the recordings the cache lacks are read, when the storyboard's
language is known (`tasks/transcription_ahead.py`): a retake's new recording is transcribed
before its flow starts.
The narration starts encoding into the assembly store too (`tasks/narration_ahead.py`), at a
lower priority, for the flow to take over.
A failure here is left to the step, which meets it again and reports it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from clients.services import load_engine
from domain.layout import MODELS
from tasks.board_sheet import find_font, prepare_sheet
from tasks.cache_bounds import cache_bytes
from tasks.narration_ahead import begin_narration, narration_of
from tasks.opening import OpenedStoryboard
from tasks.safety import safety_screen
from tasks.transcribe import reads_any
from tasks.transcription_ahead import (
    TranscriptionSource,
    begin_transcription,
    stop_reading_ahead,
    transcription_of,
)


def reads_recordings(source: TranscriptionSource | None) -> bool:
    """Whether transcribing `source` (`transcription_of`) will load Whisper: its language is
    still to be heard (None), or a recording is not in the transcript cache."""
    if source is None:
        return True
    return reads_any(source.cache.open(), source.recordings, source.settings, source.language)


@dataclass(frozen=True)
class WarmUp:
    loading: threading.Thread
    """The thread loading (joined at exit)."""
    cache_bytes_before: int
    """What the local cache held before the warm-up wrote the narration into it: where what
    the run added is counted from (`run.json`'s `cache.added_mb`)."""

    def stop(self) -> None:
        """Stop the reading begun ahead when no flow took it over."""
        stop_reading_ahead()


def warm_up(opened: OpenedStoryboard, backend: str) -> WarmUp:
    """Start loading, in the background, what the run of `opened` on `backend` will need."""
    cache_before = cache_bytes(opened.settings.cache_dir)
    begin_narration(narration_of(opened))
    transcription = transcription_of(opened)
    reads = reads_recordings(transcription)
    if reads and transcription is not None:
        begin_transcription(transcription)  # its reading waits for the engine loaded below

    def load() -> None:
        with suppress(Exception):  # in the order the run needs them
            if reads:
                settings = opened.settings
                load_engine(settings.transcription, settings.cache_dir / MODELS)
                _classifier_of(opened, backend)()
                prepare_sheet(settings.assembly.board_page, find_font())  # a new transcript
            import fpdf  # noqa: F401 - the board's library, for the hand-off

    thread = threading.Thread(target=load, name="warm up", daemon=False)
    thread.start()
    return WarmUp(thread, cache_before)


def _classifier_of(opened: OpenedStoryboard, backend: str) -> Callable[[], object]:
    """The run's safety classifier's loader (nothing to load when the screen or its
    classifier is off)."""
    screen = safety_screen(opened.settings.safety, backend, opened.plan.spec)
    if screen is None or screen.classifier is None:
        return lambda: None
    return screen.classifier
