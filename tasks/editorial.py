"""Editor timelines: the cut as OpenTimelineIO (`storyboard.otio`, always) and, through OTIO's
adapter packages, Final Cut Pro 7 XML (Premiere, Resolve) and CMX 3600 EDL (`assembly.exports`).

Each scene is a clip at its timeline position on a video track, referencing its span of
`storyboard.mp4`, so that an editor's timeline reproduces the cut frame for frame; the
narration is the same spans on an audio track (an EDL carries video only). A marker on each
clip names the scene and carries its status, transcript and prompt; the clip's metadata
names its own image and motion clip. Media references are relative to TARGET, so the folder
can be moved or downloaded from the bucket and still open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import opentimelineio as otio

from clients.cache import write_text_atomic
from domain.layout import EXPORT_FILES, OTIO_FILE, VIDEO_FILE
from domain.report import ScenePaths
from domain.scene import SceneOutcome, TimelineEntry

EXPORTS = {
    name: (adapter, EXPORT_FILES[name])
    for name, adapter in (("fcp_xml", "fcp_xml"), ("edl", "cmx_3600"))
}
"""`assembly.exports` names: (OTIO adapter, file name)."""
MARKER_TEXT_LIMIT = 500
_GREEN, _RED = otio.schema.MarkerColor.GREEN, otio.schema.MarkerColor.RED


def _range(start_s: float, end_s: float, fps: float) -> otio.opentime.TimeRange:
    start = otio.opentime.RationalTime(round(start_s * fps), fps)
    end = otio.opentime.RationalTime(round(end_s * fps), fps)
    return otio.opentime.TimeRange(start, end - start)


def _marker(outcome: SceneOutcome, span: otio.opentime.TimeRange) -> otio.schema.Marker:
    """A marker over the whole scene: `span` is the clip's source range (a marker is placed in
    its clip's media time, so a marker at 0 would sit before the clip's first frame)."""
    transcript = outcome.transcript.text.strip() if outcome.transcript else ""
    comment = f"{outcome.status.value}: {transcript or outcome.error}"[:MARKER_TEXT_LIMIT]
    return otio.schema.Marker(
        name=outcome.recording.scene_id,
        marked_range=span,
        color=otio.schema.MarkerColor.GREEN
        if outcome.status == "ok"
        else otio.schema.MarkerColor.RED,
        metadata={"storyboard": {"status": outcome.status.value, "prompt": outcome.prompt}},
        comment=comment,
    )


def _clip(
    outcome: SceneOutcome,
    entry: TimelineEntry,
    paths: ScenePaths,
    video: otio.schema.ExternalReference,
    fps: float,
) -> otio.schema.Clip:
    span = _range(entry.start_s, entry.end_s, fps)
    clip = otio.schema.Clip(
        name=outcome.recording.scene_id,
        media_reference=video,
        source_range=span,
        metadata={
            "storyboard": {
                "scene_id": outcome.recording.scene_id,
                "status": outcome.status.value,
                "transcript": outcome.transcript.text if outcome.transcript else "",
                "prompt": outcome.prompt,
                "image": paths.image,
                "clip": paths.clip,
            }
        },
    )
    clip.markers.append(_marker(outcome, span))
    return clip


def editorial_timeline(
    title: str,
    outcomes: Sequence[SceneOutcome],
    timeline: Sequence[TimelineEntry],
    published: Mapping[str, ScenePaths],
    fps: float,
    video_duration_s: float,
) -> otio.schema.Timeline:
    """The cut: a video track and a narration track of every scene's span, in order."""
    result = otio.schema.Timeline(name=title)
    result.global_start_time = otio.opentime.RationalTime(0, fps)
    available = _range(0.0, video_duration_s, fps)
    tracks = {
        kind: otio.schema.Track(name=name, kind=kind)
        for kind, name in ((otio.schema.TrackKind.Video, "V1"), (otio.schema.TrackKind.Audio, "A1"))
    }
    entries = {entry.scene_id: entry for entry in timeline}
    for outcome in outcomes:
        entry = entries.get(outcome.recording.scene_id)
        if entry is None or entry.end_s <= entry.start_s:
            continue
        paths = published.get(outcome.recording.scene_id, ScenePaths())
        for track in tracks.values():
            video = otio.schema.ExternalReference(target_url=VIDEO_FILE, available_range=available)
            track.append(_clip(outcome, entry, paths, video, fps))
    result.tracks.extend(tracks.values())
    return result


def video_only(cut: otio.schema.Timeline) -> otio.schema.Timeline:
    """`cut` without its audio tracks, for formats that carry video alone (an EDL)."""
    copy = cut.deepcopy()
    for track in list(copy.tracks):
        if track.kind != otio.schema.TrackKind.Video:
            copy.tracks.remove(track)
    return copy


def write_editorial_files(
    cut: otio.schema.Timeline, target: Path, exports: Sequence[str]
) -> list[Path]:
    """`storyboard.otio`, and each of `exports` by its OTIO adapter; the paths written."""
    written = [target / OTIO_FILE]
    write_text_atomic(written[0], otio.adapters.write_to_string(cut, "otio_json"))
    for name in exports:
        adapter, file_name = EXPORTS[name]
        chosen = video_only(cut) if adapter == "cmx_3600" else cut
        write_text_atomic(target / file_name, otio.adapters.write_to_string(chosen, adapter))
        written.append(target / file_name)
    return written
