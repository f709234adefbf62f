"""What flows between the stages: one dataclass per kind of result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from domain.storyboard import StoryboardSpec


class SceneStatus(StrEnum):
    OK = "ok"
    NO_SPEECH = "no_speech"
    FILTERED = "filtered"
    BLOCKED = "blocked"
    """The safety screen stopped the prompt before any request."""
    FAILED = "failed"


@dataclass(frozen=True)
class Recording:
    """One scene's narration file, as found by ingest."""

    scene_id: str
    order: int
    path: Path
    source_uri: str
    sha256: str
    prompt_override: str | None = None
    seed_override: int | None = None
    duration_override_s: float | None = None
    language: str | None = None
    """The language its scene's `language:` in storyboard.yaml names."""
    problem: str = ""
    """Why this recording cannot become a scene, found at ingest (a duplicate scene id)."""


@dataclass(frozen=True)
class StoryboardPlan:
    """A storyboard folder resolved into an ordered list of recordings."""

    name: str
    title: str
    source_uri: str
    spec: StoryboardSpec
    recordings: tuple[Recording, ...]
    skipped: tuple[str, ...] = ()
    music: Path | None = None
    warnings: tuple[str, ...] = ()
    """What the user should hear about the storyboard's own files (a listed scene that has no
    recording)."""


@dataclass(frozen=True)
class Word:
    """One word Whisper heard, timed on its recording's timeline. `text` is as Whisper wrote it,
    usually with its leading space, so joining a segment's words gives back its text."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()
    """Each word's time, when Whisper was asked for them (packed windows always are, every
    scene with `assembly.captions_by_word`); empty otherwise and in older cached transcripts."""


@dataclass(frozen=True)
class Transcript:
    """Whisper's reading of one recording.

    `text` is in the spoken language; `english_text` is what the image prompt is built from
    (the same as `text` for English speech, Whisper's translation otherwise).
    """

    language: str
    language_probability: float | None
    """What Whisper's detection measured for `language` on this scene's speech alone; None
    when the scene was not measured alone (its language was named)."""
    text: str
    english_text: str
    segments: tuple[Segment, ...]
    audio_duration_s: float
    no_speech: bool
    seconds: float
    from_cache: bool = False


@dataclass(frozen=True)
class SceneFailure:
    """Why a stage could not produce its result for one scene."""

    reason: str
    status: SceneStatus = SceneStatus.FAILED
    api_calls: int = 0
    fatal: bool = False
    outcome_unknown: bool = False
    """A request was sent and its answer lost: the service may have made (and billed) it."""
    possibly_paid_twice: int = 0


@dataclass(frozen=True)
class GeneratedMedia:
    """One scene's image and motion clip, stored in the content cache."""

    image_path: Path
    clip_path: Path
    seed: int
    image_model: str
    backend: str
    api_calls: int = 0
    cache_hits: int = 0
    possibly_paid_twice: int = 0
    """Requests sent again after their answer was lost (`generation.resend_unknown_outcomes`)."""
    prompt_sent: str = ""
    """The prompt as the image model was sent it, where the backend changed it."""
    prompt_note: str = ""
    retired_model: str = ""
    """The model asked for, when it was retired and `image_model` is its fallback."""
    clip_model: str = ""
    """What made the motion clip (a video model, or the push-in over the picture)."""
    motion_prompt: str = ""
    """The motion prompt the clip's model was sent; "" for a model that takes no text."""


@dataclass(frozen=True)
class SceneOutcome:
    """Everything known about one scene once generation is over."""

    recording: Recording
    status: SceneStatus
    transcript: Transcript | None = None
    prompt: str = ""
    seed: int | None = None
    media: GeneratedMedia | None = None
    error: str = ""
    note: str = ""
    """What the user should know about a scene that rendered, such as a shortened prompt."""
    characters: tuple[str, ...] = ()
    """The characters the scene's picture was asked to show."""

    @property
    def scene_id(self) -> str:
        return self.recording.scene_id


@dataclass(frozen=True)
class TimelineEntry:
    """Where one scene sits on the assembled storyboard's timeline."""

    scene_id: str
    start_s: float
    end_s: float
