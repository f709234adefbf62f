"""Safety: every scene's prompt is screened before its first request.

The screen (`clients/safety.py`) is built once per run from `safety:` in the settings and the
storyboard's `blocklist:`. A scene it stops is `blocked`: a placeholder card, its reason in
the manifest, and no request at all. No verdict is cached, so an edited prompt or a longer
blocklist is screened again; only the classifier's score of each text is (`CachedScores`), so
a run whose texts were all scored before never loads the classifier.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from clients.cache import ContentCache, content_key
from clients.safety import Blocklist, SafetyScreen, Screened, profanity_classifier, read_blocklist
from configs.settings import SafetySettings
from domain.layout import SAFETY_SCORES
from domain.scene import Recording, SceneFailure, SceneStatus, Transcript
from domain.storyboard import StoryboardSpec
from tasks.prompt import ScenePrompt

BLOCKED_BY = "blocked by the safety screen"


def _version_of(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "missing"


SCORES_NAMESPACE = SAFETY_SCORES


@dataclass(frozen=True)
class CachedScores:
    """The classifier's scores in the content cache, by classifier version and text."""

    cache: ContentCache
    name: str = "profanity"
    version: str = _version_of("alt-profanity-check")

    def _key(self, text: str) -> str:
        return content_key("safety score", self.name, self.version, text)

    def recall(self, text: str) -> float | None:
        found = self.cache.get_json(SCORES_NAMESPACE, self._key(text))
        score = found.get("score") if found is not None else None
        return float(score) if isinstance(score, int | float) else None

    def remember(self, text: str, score: float) -> None:
        self.cache.put_json(SCORES_NAMESPACE, self._key(text), {"score": score})


def safety_screen(
    settings: SafetySettings,
    backend: str,
    spec: StoryboardSpec,
    cache: ContentCache | None = None,
) -> SafetyScreen | None:
    """The run's screen, or None when it is off (`auto`: on for every backend but draft).

    The blocklist file is read here, so a missing one is a configuration error; the classifier
    is loaded only when the first prompt is checked."""
    if settings.enabled == "off" or (settings.enabled == "auto" and backend == "draft"):
        return None
    entries = [*settings.blocklist, *spec.blocklist]
    if settings.blocklist_file is not None:
        entries.extend(read_blocklist(settings.blocklist_file))
    classifier = profanity_classifier if settings.classifier else None
    memory = CachedScores(cache) if cache is not None else None
    return SafetyScreen(Blocklist(tuple(entries)), classifier, settings.threshold, memory)


def warm_classifier(screen: SafetyScreen | None, new_texts_coming: Callable[[], bool]) -> None:
    """Load the screen's classifier in the background, beside the transcription, when
    `new_texts_coming()` (asked in the background too) says scenes will be read afresh: their
    texts have no score yet, and the first of them would otherwise wait for the load."""
    if screen is None or screen.classifier is None:
        return
    load = screen.classifier

    def warm() -> None:
        if new_texts_coming():
            with suppress(Exception):  # the screen loads it again and reports what failed
                load()

    threading.Thread(target=warm, name="safety classifier", daemon=False).start()


def screened_texts(recording: Recording, transcript: Transcript, prompt: str) -> list[Screened]:
    """What is checked: the prompt as it will be sent (style included) and, when the prompt is
    made from it, the narration (in English and as spoken). A scene's own `prompt:` replaces
    the narration, which then is not sent and not screened."""
    texts = [Screened("the prompt", prompt)]
    if recording.prompt_override is None:
        texts.append(Screened("the narration", transcript.english_text))
        if transcript.text.strip() != transcript.english_text.strip():
            texts.append(Screened("the narration", transcript.text, classify=False))
    return texts


def screen_scene(
    screen: SafetyScreen | None,
    recording: Recording,
    transcript: Transcript,
    scene_prompt: ScenePrompt,
) -> SceneFailure | None:
    """A `blocked` failure for a scene whose prompt must not be sent, else None."""
    if screen is None:
        return None
    texts = screened_texts(recording, transcript, scene_prompt.request.prompt)
    reason = screen.reason_to_block(texts)
    if reason is None:
        return None
    message = f"{BLOCKED_BY}: {reason}"
    _logger().warning("%s: %s", recording.scene_id, message)
    return SceneFailure(message, SceneStatus.BLOCKED)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
