"""Prompt: a narration's English reading and the storyboard's style, as one image prompt."""

from __future__ import annotations

import re

from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key
from clients.generation import SVD_HEIGHT, SVD_WIDTH, ImageRequest
from configs.settings import GenerationSettings, StoryboardSpec
from tasks.scene import Recording, Transcript

MAX_PROMPT_CHARS = 600
_FILLERS = re.compile(r"\b(?:um+|uh+|erm+|hmm+|you know|i mean)\b[,.]?\s*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def clean_narration(text: str) -> str:
    """Narration text without filler words, stray spacing or a trailing full stop."""
    cleaned = _SPACES.sub(" ", _FILLERS.sub("", text)).strip()
    return cleaned.rstrip(" .")


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:")


def build_prompt(narration: str, style: str = "", override: str | None = None) -> str:
    """The image prompt for one scene.

    An explicit per-scene prompt wins over the narration; the storyboard's style is appended
    either way. Returns "" when there is nothing to draw.
    """
    subject = clean_narration(override if override is not None else narration)
    if not subject:
        return ""
    style = _SPACES.sub(" ", style).strip().strip(",")
    budget = MAX_PROMPT_CHARS - (len(style) + 2 if style else 0)
    subject = _truncate(subject, max(budget, MAX_PROMPT_CHARS // 2))
    return f"{subject}, {style}" if style else subject


def scene_seed(base_seed: int, scene_id: str, override: int | None = None) -> int:
    """A stable non-zero seed per scene (0 means "random" to the hosted API)."""
    if override is not None:
        return override
    return int(content_key(base_seed, scene_id)[:8], 16) % (2**32 - 1) + 1


def image_request(
    recording: Recording,
    transcript: Transcript,
    spec: StoryboardSpec,
    settings: GenerationSettings,
    size: tuple[int, int] = (SVD_WIDTH, SVD_HEIGHT),
) -> ImageRequest:
    """The generation request for a scene whose narration was heard, shaped like the
    storyboard (`size`: its frame)."""
    return ImageRequest(
        prompt=build_prompt(transcript.english_text, spec.style, recording.prompt_override),
        negative_prompt=spec.negative_prompt,
        model=spec.image_model or settings.image_model,
        seed=scene_seed(spec.seed, recording.scene_id, recording.seed_override),
        cfg_scale=settings.cfg_scale,
        sampler=settings.sampler,
        steps=settings.steps,
        label=f"Scene {recording.order}",
        width=size[0],
        height=size[1],
    )


@task(name="prompt", cache_policy=NO_CACHE)
def prompt(
    recording: Recording,
    transcript: Transcript,
    spec: StoryboardSpec,
    settings: GenerationSettings,
    size: tuple[int, int] = (SVD_WIDTH, SVD_HEIGHT),
) -> ImageRequest:
    return image_request(recording, transcript, spec, settings, size)
