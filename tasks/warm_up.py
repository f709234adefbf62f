"""What a run will load, loaded while its Prefect server starts.

`storyboard run` without a configured server waits seconds for its temporary one. Meanwhile
what the run will need is loaded: the board's PDF library (a run that changes anything draws
its board), and, into the process-wide places its steps take them from, the Whisper engine
(`clients/services.py:load_engine`) when the run will detect the storyboard's language or read
a recording the cache does not hold, and the safety classifier
(`clients/safety.py:profanity_classifier`) when those readings will be screened, and then a
blank board with its fonts read (`tasks/board_sheet.py`), since a new transcript redraws the
board. A retake then reads its one recording as soon as the flow starts, instead of first
waiting for the engine.
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
from clients.storage import CacheLocation
from domain.layout import MODELS
from tasks.board_sheet import find_font, prepare_sheet
from tasks.cache_bounds import cache_bytes
from tasks.language import known_storyboard_language
from tasks.narration_ahead import begin_narration, narration_of
from tasks.opening import OpenedStoryboard
from tasks.safety import safety_screen
from tasks.transcribe import reads_any


def reads_recordings(opened: OpenedStoryboard) -> bool:
    """Whether transcribing `opened` will load Whisper: its language is still to be heard, or
    a recording is not in the transcript cache."""
    settings = opened.settings
    recordings = list(opened.plan.recordings)
    cache = CacheLocation.of(settings)
    named = opened.named_language
    language = known_storyboard_language(recordings, settings.transcription, cache, named)
    return language is None or reads_any(cache.open(), recordings, settings.transcription, language)


@dataclass(frozen=True)
class WarmUp:
    loading: threading.Thread
    """The thread loading (joined at exit)."""
    cache_bytes_before: int
    """What the local cache held before the warm-up wrote the narration into it: where what
    the run added is counted from (`run.json`'s `cache.added_mb`)."""


def warm_up(opened: OpenedStoryboard, backend: str) -> WarmUp:
    """Start loading, in the background, what the run of `opened` on `backend` will need."""
    cache_before = cache_bytes(opened.settings.cache_dir)
    begin_narration(narration_of(opened))

    def load() -> None:
        with suppress(Exception):  # in the order the run needs them
            if reads_recordings(opened):
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
