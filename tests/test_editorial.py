"""Editor timelines: OTIO, FCP XML and EDL written by OpenTimelineIO and read back."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest

from domain.report import ScenePaths
from domain.scene import Recording, SceneOutcome, SceneStatus, TimelineEntry, Transcript
from tasks.editorial import editorial_timeline, write_editorial_files

FPS = 24.0


def _scene(scene_id: str, status: SceneStatus, text: str) -> SceneOutcome:
    recording = Recording(scene_id, 1, Path(f"{scene_id}.wav"), f"file:///{scene_id}", "0" * 64)
    transcript = Transcript("en", 1.0, text, text, (), 2.0, False, 0.1)
    return SceneOutcome(recording, status, transcript, prompt=f"{text}, storyboard frame")


@pytest.fixture
def cut() -> otio.schema.Timeline:
    outcomes = [
        _scene("dawn", SceneStatus.OK, "A lion walks through a misty jungle at dawn"),
        _scene("river", SceneStatus.FAILED, "The river runs"),
        _scene("night", SceneStatus.OK, "Night falls"),
    ]
    timeline = [
        TimelineEntry("dawn", 0.0, 3.52),
        TimelineEntry("river", 3.52, 5.0),
        TimelineEntry("night", 5.0, 9.27),
    ]
    published = {"dawn": ScenePaths("scenes/dawn/image.jpg", "scenes/dawn/clip.mp4")}
    return editorial_timeline("The Lion's Day", outcomes, timeline, published, FPS, 9.27)


def test_the_otio_cut_matches_the_timeline_within_a_frame_and_reads_back(
    cut: otio.schema.Timeline, tmp_path: Path
) -> None:
    written = write_editorial_files(cut, tmp_path, ["fcp_xml", "edl"])
    assert [path.name for path in written] == [
        "storyboard.otio",
        "storyboard.xml",
        "storyboard.edl",
    ]
    read = otio.adapters.read_from_file(str(tmp_path / "storyboard.otio"))
    video, audio = read.tracks
    assert (video.kind, audio.kind) == ("Video", "Audio")
    expected = [("dawn", 0.0, 3.52), ("river", 3.52, 5.0), ("night", 5.0, 9.27)]
    for clip, (scene_id, start, end) in zip(video, expected, strict=True):
        span = video.range_of_child(clip)
        assert clip.name == scene_id
        assert abs(span.start_time.to_seconds() - start) <= 1 / FPS
        assert abs(span.end_time_exclusive().to_seconds() - end) <= 1 / FPS
        assert clip.media_reference.target_url == "storyboard.mp4"
        assert [marker.name for marker in clip.markers] == [scene_id]
    assert video[1].markers[0].comment.startswith("failed: The river runs")
    assert video[0].metadata["storyboard"]["clip"] == "scenes/dawn/clip.mp4"
    assert [clip.name for clip in audio] == ["dawn", "river", "night"]


def test_fcp_xml_and_edl_are_written_by_the_adapters_and_read_back(
    cut: otio.schema.Timeline, tmp_path: Path
) -> None:
    write_editorial_files(cut, tmp_path, ["fcp_xml", "edl"])
    xml = otio.adapters.read_from_file(str(tmp_path / "storyboard.xml"))
    assert [clip.name for clip in xml.video_tracks()[0].find_clips()] == ["dawn", "river", "night"]
    assert len(xml.audio_tracks()) == 1
    edl = otio.adapters.read_from_file(str(tmp_path / "storyboard.edl"), rate=FPS)
    clips = edl.video_tracks()[0].find_clips()
    assert len(clips) == 3 and edl.audio_tracks() == []
    edl_text = (tmp_path / "storyboard.edl").read_text()
    assert "storyboard.mp4" in edl_text and "dawn" in edl_text


def _marker_spans(timeline: otio.schema.Timeline) -> list[tuple[str, float, float]]:
    """Each video clip's first marker as (name, start, end) on the clip's own source time,
    beside the clip's source range: the two must agree."""
    spans = []
    for clip in timeline.video_tracks()[0].find_clips():
        assert clip.markers, f"{clip.name} has no marker"
        marked = clip.markers[0].marked_range
        source = clip.source_range
        assert abs(marked.start_time.to_seconds() - source.start_time.to_seconds()) <= 1 / FPS
        spans.append((clip.name, marked.start_time.to_seconds(), source.duration.to_seconds()))
    return spans


@pytest.mark.parametrize(
    ("file_name", "options"),
    [("storyboard.otio", {}), ("storyboard.xml", {}), ("storyboard.edl", {"rate": FPS})],
)
def test_each_marker_sits_on_its_own_clip_in_every_export(
    cut: otio.schema.Timeline, tmp_path: Path, file_name: str, options: dict[str, float]
) -> None:
    """An editor shows a marker in its clip's source time: one at 0 lies before a clip that
    starts 3.5 s into the video, outside it."""
    write_editorial_files(cut, tmp_path, ["fcp_xml", "edl"])
    read = otio.adapters.read_from_file(str(tmp_path / file_name), **options)
    spans = _marker_spans(read)
    starts = {name: start for name, start, _ in spans}
    assert abs(starts["river"] - 3.52) <= 1 / FPS
    assert abs(starts["night"] - 5.0) <= 1 / FPS
