"""Where scenes sit: what the assembler knows of a scene, frame-exact spans, captions, fitting.

Every scene's narration is padded with silence to whole frames, so each scene's frame count
follows from its own narration alone and scene boundaries sit on the frame grid: a retake of
another length moves the later scenes in the join but never changes their segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from configs.settings import FitMethod
from domain.scene import Recording, SceneOutcome, SceneStatus, Segment
from tasks.assembly.captions import caption_chunks

CAPTION_LINGER_S = 1.0
DRAFT_BACKEND = "draft"
"""The backend whose panels carry their scene label in their own header."""


@dataclass(frozen=True)
class SceneCut:
    """What the assembler needs to know about one scene."""

    scene_id: str
    label: str
    narration: Path | None
    """None when the recording itself was refused: the card then lasts placeholder_seconds."""
    segments: tuple[Segment, ...] = ()
    clip_path: Path | None = None
    image_path: Path | None = None
    placeholder_heading: str = ""
    placeholder_detail: str = ""
    duration_override_s: float | None = None
    narration_sha256: str = ""
    """The recording's digest, known from ingest (read from the file when empty)."""
    picture_labelled: bool = False
    """The picture carries the scene's label itself (a draft panel's header): no label is
    drawn over it, where it would hide the panel's prompt and palette."""


def source_frame_index(
    output_index: int,
    output_frames: int,
    output_fps: float,
    source_frames: int,
    source_fps: float,
    method: FitMethod,
) -> int:
    """Which source frame shows at an output frame. A clip at least as long as its span plays
    at its own rate (never stretched nor slowed); `method` fits a shorter one to the span."""
    if source_frames <= 1:
        return 0
    last = source_frames - 1
    position = output_index / output_fps * source_fps
    natural_s = source_frames / source_fps
    if method == "hold" or natural_s >= output_frames / output_fps:
        return min(last, int(position))
    if method == "stretch":
        return min(last, int(output_index * source_frames / max(1, output_frames)))
    slowdown = min(2.0, max(1.0, output_frames / output_fps / natural_s))
    cycle = int(position / slowdown) % (2 * last)
    return cycle if cycle <= last else 2 * last - cycle


def active_caption(segments: Sequence[Segment], t: float) -> int | None:
    """The index of the caption segment showing at scene time `t`, if any."""
    current = None
    for index, segment in enumerate(segments):
        if segment.start_s <= t:
            current = index
        else:
            break
    if current is None or t > segments[current].end_s + CAPTION_LINGER_S:
        return None
    return current


def frames_for(samples: int, sample_rate: int, fps: int) -> int:
    """The whole frames a scene of `samples` narration samples fills (its last one partly)."""
    return max(1, -(-samples * fps // sample_rate))


def samples_for(frames: int, sample_rate: int, fps: int) -> int:
    """Samples of narration that last `frames` frames (the first whole sample past the last)."""
    return -(-frames * sample_rate // fps)


def frames_of_padded(samples: int, sample_rate: int, fps: int) -> int:
    """The frame count of narration already padded by `samples_for`: the inverse of it."""
    return max(1, samples * fps // sample_rate)


def timeline_frames(frame_counts: Sequence[int], fps: int) -> list[tuple[float, float, int]]:
    """(start_s, end_s, frame count) per scene: each scene starts where the previous one's
    frames end."""
    spans = []
    start = 0
    for frames in frame_counts:
        spans.append((start / fps, (start + frames) / fps, frames))
        start += frames
    return spans


_PLACEHOLDERS = {
    SceneStatus.NO_SPEECH: (
        "No speech",
        "Nothing was heard in this recording, so no picture was made.",
    ),
    SceneStatus.FILTERED: ("Filtered", "The image service's content filter refused this scene."),
    SceneStatus.BLOCKED: ("Blocked", "The safety screen stopped this prompt before any request."),
    SceneStatus.FAILED: ("Failed", "This scene could not be made."),
}
"""The card's heading and detail for a scene without a picture, by its status."""


def scene_label_of(recording: Recording) -> str:
    return f"Scene {recording.order} · {recording.scene_id}"


def scene_cut(outcome: SceneOutcome, by_word: bool = False) -> SceneCut:
    """How one scene appears in the video: its clip, or a card that says why it has none.
    `by_word` (`assembly.captions_by_word`): captions a few words at a time (`caption_chunks`)."""
    recording = outcome.recording
    segments = outcome.transcript.segments if outcome.transcript else ()
    if by_word:
        segments = caption_chunks(segments)
    label = scene_label_of(recording)
    if outcome.status is SceneStatus.OK and outcome.media is not None:
        return SceneCut(
            scene_id=recording.scene_id,
            label=label,
            narration=recording.path,
            segments=segments,
            clip_path=outcome.media.clip_path,
            image_path=outcome.media.image_path,
            duration_override_s=recording.duration_override_s,
            narration_sha256=recording.sha256,
            picture_labelled=outcome.media.backend == DRAFT_BACKEND,
        )
    heading, detail = _PLACEHOLDERS.get(outcome.status, _PLACEHOLDERS[SceneStatus.FAILED])
    recording_refused = outcome.status is SceneStatus.FAILED and outcome.transcript is None
    return SceneCut(
        scene_id=recording.scene_id,
        label=label,
        narration=None if recording_refused else recording.path,
        segments=segments,
        placeholder_heading=heading,
        placeholder_detail=outcome.error or detail,
        duration_override_s=recording.duration_override_s,
        narration_sha256=recording.sha256,
    )


def narration_cut(recording: Recording, plays: bool) -> SceneCut:
    """A scene's cut as far as its narration goes, known before the scene is transcribed:
    its recording when it `plays`, else its placeholder's silence (`scene_cut` has the last
    word)."""
    return SceneCut(
        scene_id=recording.scene_id,
        label=scene_label_of(recording),
        narration=recording.path if plays else None,
        duration_override_s=recording.duration_override_s,
        narration_sha256=recording.sha256,
    )
