"""Prompt: a narration's English reading and the storyboard's style, as one image prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from clients.cache import content_key
from clients.generation.schemas import MODELS, model_default, shorten_at_word
from configs.settings import GenerationSettings
from domain.media import (
    SVD_HEIGHT,
    SVD_WIDTH,
    CharacterReference,
    ClipMotion,
    ImageRequest,
    Subject,
)
from domain.scene import Recording, Transcript
from domain.storyboard import StoryboardSpec
from tasks.characters import characters_used, scene_characters

MAX_PROMPT_CHARS = 600
_FILLERS = re.compile(r"\b(?:um+|uh+|erm+|hmm+|you know|i mean)\b[,.]?\s*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def clean_narration(text: str) -> str:
    """Narration text without filler words, stray spacing or a trailing full stop."""
    cleaned = _SPACES.sub(" ", _FILLERS.sub("", text)).strip()
    return cleaned.rstrip(" .")


def clean_style(style: str) -> str:
    """The storyboard's style as it ends every prompt."""
    return _SPACES.sub(" ", style).strip().strip(",")


@dataclass(frozen=True)
class ComposedPrompt:
    text: str
    note: str = ""
    """Why the prompt is not the whole narration (or scene prompt); "" when it is."""


def compose_prompt(narration: str, style: str = "", override: str | None = None) -> ComposedPrompt:
    """The image prompt for one scene.

    An explicit per-scene prompt wins over the narration; the storyboard's style is appended
    either way. A subject too long for the prompt is shortened at a word boundary, and says so.
    The text is "" when there is nothing to draw.
    """
    subject = clean_narration(override if override is not None else narration)
    if not subject:
        return ComposedPrompt("")
    style = clean_style(style)
    budget = max(MAX_PROMPT_CHARS - (len(style) + 2 if style else 0), MAX_PROMPT_CHARS // 2)
    note = ""
    if len(subject) > budget:
        kind = "scene prompt" if override is not None else "narration"
        whole, subject = len(subject), shorten_at_word(subject, budget)
        note = f"prompt shortened to the first {len(subject)} of the {kind}'s {whole} characters"
    return ComposedPrompt(f"{subject}, {style}" if style else subject, note)


def build_prompt(narration: str, style: str = "", override: str | None = None) -> str:
    """The image prompt's text (see `compose_prompt`)."""
    return compose_prompt(narration, style, override).text


def scene_seed(base_seed: int, scene_id: str, override: int | None = None) -> int:
    """A stable non-zero seed per scene (0 means "random" to the hosted API)."""
    if override is not None:
        return override
    return int(content_key(base_seed, scene_id)[:8], 16) % (2**32 - 1) + 1


@dataclass(frozen=True)
class ScenePrompt:
    """A scene's generation request, and a note for the manifest when its prompt was cut."""

    request: ImageRequest
    note: str = ""


def image_request(
    recording: Recording,
    transcript: Transcript,
    spec: StoryboardSpec,
    settings: GenerationSettings,
    size: tuple[int, int] = (SVD_WIDTH, SVD_HEIGHT),
) -> ScenePrompt:
    """The generation request for a scene whose narration was heard, shaped like the
    storyboard (`size`: its frame)."""
    composed = compose_prompt(transcript.english_text, spec.style, recording.prompt_override)
    characters = characters_of(spec, recording, transcript)
    model = spec.image_model or settings.image_model
    request = ImageRequest(
        prompt=composed.text,
        negative_prompt=spec.negative_prompt,
        model=model,
        seed=scene_seed(spec.seed, recording.scene_id, recording.seed_override),
        cfg_scale=_or_model_default(settings.cfg_scale, model, "cfg_scale", 5.0),
        sampler=settings.sampler,
        steps=int(_or_model_default(settings.steps, model, "steps", 25)),
        label=f"Scene {recording.order}",
        width=size[0],
        height=size[1],
        subjects=subjects_of(spec, recording.path.parent) + tuple(loras_of(characters)),
        motion=scene_motion(spec, recording.scene_id, scene_span_s(recording, transcript)),
        style=clean_style(spec.style),
        characters=characters,
    )
    return ScenePrompt(request, composed.note)


def loras_of(characters: tuple[CharacterReference, ...]) -> list[Subject]:
    """The LoRAs of the scene's characters, applied as subjects of its picture alone."""
    return [Subject(c.lora) for c in characters if c.lora]


def characters_of(
    spec: StoryboardSpec, recording: Recording, transcript: Transcript
) -> tuple[CharacterReference, ...]:
    """The characters the scene uses (`tasks/characters.py`), their files found beside it: those
    its prompt names when it has its own, else those its narration names."""
    said = recording.prompt_override or f"{transcript.text} {transcript.english_text}"
    folder = recording.path.parent
    return tuple(
        CharacterReference(
            name=character.name,
            references=tuple(str(folder / name) for name in character.references),
            strength=character.strength,
            lora=str(folder / character.lora) if character.lora else None,
        )
        for character in characters_used(spec, scene_characters(spec, recording.scene_id, said))
    )


def _or_model_default(value: float | None, model: str, name: str, otherwise: float) -> float:
    """A setting, or when it is left open the image model's own default."""
    if value is not None:
        return value
    default = model_default(model, name) if model in MODELS else None
    return otherwise if default is None else float(default)


def subjects_of(spec: StoryboardSpec, folder: Path) -> tuple[Subject, ...]:
    """The storyboard's subjects, their weights found relative to its folder."""
    return tuple(
        Subject(str((folder / subject.path).expanduser()), subject.scale, subject.trigger)
        for subject in spec.subjects
    )


def scene_span_s(recording: Recording, transcript: Transcript) -> float:
    """How long the scene lasts in the video: its `duration:`, else its narration."""
    if recording.duration_override_s is not None:
        return recording.duration_override_s
    return transcript.audio_duration_s


def scene_motion(spec: StoryboardSpec, scene_id: str, span_s: float = 0.0) -> ClipMotion:
    scene = spec.scene(scene_id)
    style = clean_style(spec.motion_style)
    if scene is None:
        return ClipMotion(style=style, span_s=span_s)
    return ClipMotion(
        motion_bucket_id=scene.motion_bucket_id,
        noise_aug_strength=scene.noise_aug_strength,
        frames=scene.frames,
        fps=scene.fps,
        text=clean_style(scene.motion or ""),
        style=style,
        span_s=span_s,
    )


def motion_prompt(request: ImageRequest) -> str:
    """What a text-steered motion model is told: the scene's prompt, then its own `motion:`,
    then the storyboard's `motion_style:`."""
    parts = (request.prompt, request.motion.text, request.motion.style)
    return ". ".join(part.strip().rstrip(".") for part in parts if part.strip())
