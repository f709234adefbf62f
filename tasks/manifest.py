"""Manifest: the per-scene files, `manifest.csv`, `storyboard.srt` and `run.json` in TARGET."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.cache import atomic_path, copy_atomic, write_text_atomic
from clients.media.video import clip_shape
from clients.storage import safe_name
from domain.layout import MANIFEST_FILE, RUN_FILE, SRT_FILE, VTT_FILE, ReviewEntry
from domain.report import RunReport, ScenePaths
from domain.scene import GeneratedMedia, SceneOutcome, SceneStatus, TimelineEntry
from tasks.assembly.captions import caption_chunks
from tasks.reviews import verdict_for

MANIFEST_COLUMNS = (
    "scene_id",
    "order",
    "source_uri",
    "audio_sha256",
    "audio_duration_s",
    "language",
    "transcript",
    "prompt",
    "backend",
    "image_model",
    "seed",
    "image_path",
    "clip_path",
    "start_s",
    "end_s",
    "status",
    "error",
)
EXTRA_COLUMNS = (
    "language_probability",
    "english_transcript",
    "note",
    "review",
    "review_comment",
    "characters",
    "motion_prompt",
    "clip_model",
    "clip_frames",
    "clip_fps",
)
_UNSAFE = re.compile(r"[^\w.-]+", re.UNICODE)


def scene_dir_name(scene_id: str, taken: set[str]) -> str:
    """A folder name for a scene: its id when that is safe, else a cleaned, unique variant."""
    name = _UNSAFE.sub("_", scene_id).strip("._") or "scene"
    candidate, suffix = name, 2
    while candidate in taken:
        candidate, suffix = f"{name}-{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def real_folder(root: Path, relative: str) -> Path:
    """`root/relative` as a real folder: a symbolic link on the way below `root` is replaced by
    a new folder (the link is removed, never what it points to), so nothing written there
    lands outside `root` or in another scene's folder."""
    folder = root
    for part in PurePosixPath(safe_name(relative)).parts:
        folder = folder / part
        if folder.is_symlink():
            folder.unlink()
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def publish_scene_files(outcomes: Sequence[SceneOutcome], target: Path) -> dict[str, ScenePaths]:
    """Copy each generated image and clip to `scenes/<scene_id>/` under `target`."""
    published: dict[str, ScenePaths] = {}
    taken: set[str] = set()
    for outcome in outcomes:
        media = outcome.media
        if media is None:
            published[outcome.scene_id] = ScenePaths()
            continue
        folder = Path("scenes") / scene_dir_name(outcome.scene_id, taken)
        real_folder(target, folder.as_posix())
        image = folder / f"image{media.image_path.suffix}"
        clip = folder / "clip.mp4"
        copy_atomic(media.image_path, target / image)
        copy_atomic(media.clip_path, target / clip)
        published[outcome.scene_id] = ScenePaths(image=image.as_posix(), clip=clip.as_posix())
    return published


def manifest_frame(
    outcomes: Sequence[SceneOutcome],
    timeline: Sequence[TimelineEntry],
    published: Mapping[str, ScenePaths],
    backend: str,
    image_model: str,
    reviews: Mapping[str, ReviewEntry] | None = None,
) -> pd.DataFrame:
    spans = {entry.scene_id: entry for entry in timeline}
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        verdict = verdict_for(outcome, reviews or {})
        transcript = outcome.transcript
        span = spans.get(outcome.scene_id)
        paths = published.get(outcome.scene_id, ScenePaths())
        rows.append(
            {
                "scene_id": outcome.scene_id,
                "order": outcome.recording.order,
                "source_uri": outcome.recording.source_uri,
                "audio_sha256": outcome.recording.sha256,
                "audio_duration_s": transcript.audio_duration_s if transcript else None,
                "language": transcript.language if transcript else "",
                "transcript": transcript.text if transcript else "",
                "prompt": outcome.prompt,
                "backend": outcome.media.backend if outcome.media else backend,
                "image_model": outcome.media.image_model if outcome.media else image_model,
                "seed": outcome.seed,
                "image_path": paths.image,
                "clip_path": paths.clip,
                "start_s": span.start_s if span else None,
                "end_s": span.end_s if span else None,
                "status": outcome.status.value,
                "error": outcome.error,
                "language_probability": transcript.language_probability if transcript else None,
                "english_transcript": transcript.english_text if transcript else "",
                "note": outcome.note,
                "review": verdict.verdict if verdict else "",
                "review_comment": verdict.comment if verdict else "",
                "characters": ";".join(outcome.characters),
                **clip_columns(outcome.media),
            }
        )
    frame = pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, *EXTRA_COLUMNS])
    for column in ("seed", "clip_frames"):
        frame[column] = frame[column].astype("Int64")
    return frame


def clip_columns(media: GeneratedMedia | None) -> dict[str, Any]:
    """What made the scene's clip, told what, and its frames and frame rate as encoded."""
    shape = clip_shape(media.clip_path) if media is not None else None
    return {
        "motion_prompt": media.motion_prompt if media else "",
        "clip_model": media.clip_model if media else "",
        "clip_frames": shape[0] if shape else None,
        "clip_fps": round(shape[1], 3) if shape else None,
    }


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def caption_cues(
    outcomes: Sequence[SceneOutcome], timeline: Sequence[TimelineEntry], by_word: bool = False
) -> list[tuple[float, float, str]]:
    """(start, end, text) on the storyboard's timeline: each segment (or, `by_word`, each
    few words of it) offset by its scene's start and clipped to its scene's span."""
    spans = {entry.scene_id: entry for entry in timeline}
    cues: list[tuple[float, float, str]] = []
    for outcome in outcomes:
        span = spans.get(outcome.scene_id)
        if span is None or outcome.transcript is None:
            continue
        segments = outcome.transcript.segments
        for segment in caption_chunks(segments) if by_word else segments:
            start = min(span.end_s, span.start_s + segment.start_s)
            end = min(span.end_s, span.start_s + segment.end_s)
            if end - start >= 0.05 and segment.text:
                cues.append((start, end, segment.text))
    return cues


def srt_text(cues: Sequence[tuple[float, float, str]]) -> str:
    return "\n".join(
        f"{number}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{text}\n"
        for number, (start, end, text) in enumerate(cues, start=1)
    )


def vtt_text(cues: Sequence[tuple[float, float, str]]) -> str:
    body = "\n".join(
        f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{text}\n"
        for start, end, text in cues
    )
    return f"WEBVTT\n\n{body}"


def count_statuses(outcomes: Sequence[SceneOutcome]) -> dict[str, int]:
    counts = {status.value: 0 for status in SceneStatus}
    for outcome in outcomes:
        counts[outcome.status.value] += 1
    return counts


def write_outputs(
    outcomes: Sequence[SceneOutcome],
    timeline: Sequence[TimelineEntry],
    target: Path,
    backend: str,
    image_model: str,
    captions_by_word: bool = False,
    reviews: Mapping[str, ReviewEntry] | None = None,
) -> dict[str, ScenePaths]:
    """manifest.csv, storyboard.srt and .vtt, and the scenes/ folder, each written atomically.

    Returns where each scene's files were published, relative to `target`."""
    published = publish_scene_files(outcomes, target)
    frame = manifest_frame(
        outcomes=outcomes,
        timeline=timeline,
        published=published,
        backend=backend,
        image_model=image_model,
        reviews=reviews,
    )
    with atomic_path(target / MANIFEST_FILE) as temporary:
        frame.to_csv(temporary, index=False, encoding="utf-8")
    cues = caption_cues(outcomes, timeline, captions_by_word)
    write_text_atomic(target / SRT_FILE, srt_text(cues))
    write_text_atomic(target / VTT_FILE, vtt_text(cues))
    return published


def write_run_json(report: RunReport, path: Path) -> None:
    document = {
        "storyboard": report.storyboard,
        "title": report.title,
        "source": report.source,
        "target": report.target,
        "stages": {name: round(seconds, 3) for name, seconds in report.stages.items()},
        "scenes": report.scenes,
        "api_calls": report.api_calls,
        "cache_hits": report.cache_hits,
        "backend": report.backend,
        "draft": report.draft,
        "engine": report.engine,
        "model": report.model,
        "task_runner": report.task_runner,
        "versions": report.versions,
        "source_fingerprint": report.source_fingerprint,
        "fallbacks": report.fallbacks,
        "unknown_outcomes": report.unknown_outcomes,
        "possibly_paid_twice": report.possibly_paid_twice,
        "assembly": report.assembly,
        "cache": report.cache,
        "flow_run_id": report.flow_run_id,
        "outputs": report.outputs,
    }
    write_text_atomic(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@task(name="manifest", cache_policy=NO_CACHE)
def write_manifest(
    outcomes: list[SceneOutcome],
    timeline: list[TimelineEntry],
    target: Path,
    backend: str,
    image_model: str,
    captions_by_word: bool = False,
    reviews: Mapping[str, ReviewEntry] | None = None,
) -> dict[str, ScenePaths]:
    return write_outputs(
        outcomes=outcomes,
        timeline=timeline,
        target=target,
        backend=backend,
        image_model=image_model,
        captions_by_word=captions_by_word,
        reviews=reviews,
    )


@task(name="run-report", cache_policy=NO_CACHE)
def write_run_report(report: RunReport, target: Path) -> None:
    write_run_json(report, target / RUN_FILE)
