"""Safety: every scene's prompt is screened before its first request.

The screen (`clients/safety.py`) is built once per run from `safety:` in the settings and the
storyboard's `blocklist:`. A scene it stops is `blocked`: a placeholder card, its reason in
the manifest, and no request at all. Nothing about a verdict is cached, so an edited prompt
(`--only SCENE`) is screened again.
"""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from clients.safety import Blocklist, SafetyScreen, Screened, profanity_classifier, read_blocklist
from configs.settings import SafetySettings
from domain.scene import Recording, SceneFailure, SceneStatus, Transcript
from domain.storyboard import StoryboardSpec
from tasks.prompt import ScenePrompt

BLOCKED_BY = "blocked by the safety screen"


def safety_screen(
    settings: SafetySettings, backend: str, spec: StoryboardSpec
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
    return SafetyScreen(Blocklist(tuple(entries)), classifier, settings.threshold)


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
