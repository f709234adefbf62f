from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from domain.scene import (
    GeneratedMedia,
    Recording,
    SceneOutcome,
    SceneStatus,
    Segment,
    TimelineEntry,
    Transcript,
)
from tasks.manifest import (
    MANIFEST_COLUMNS,
    caption_cues,
    manifest_frame,
    publish_scene_files,
    scene_dir_name,
    srt_text,
    vtt_text,
)
from tasks.reviews import read_reviews

INTERFACE_COLUMNS = (
    "scene_id, order, source_uri, audio_sha256, audio_duration_s, language, transcript, prompt, "
    "backend, image_model, seed, image_path, clip_path, start_s, end_s, status, error"
)


def _recording(tmp_path: Path, scene_id: str, order: int) -> Recording:
    path = tmp_path / f"{scene_id}.wav"
    return Recording(scene_id, order, path, path.as_uri(), "ab" * 32)


def _transcript(text: str, segments: tuple[Segment, ...]) -> Transcript:
    return Transcript("en", 0.99, text, text, segments, 3.0, not text, 0.5)


@pytest.fixture
def outcomes(tmp_path: Path) -> list[SceneOutcome]:
    image, clip = tmp_path / "image.png", tmp_path / "clip.mp4"
    image.write_bytes(b"png")
    clip.write_bytes(b"mp4")
    media = GeneratedMedia(image, clip, 77, "sdxl", "draft", api_calls=0, cache_hits=2)
    heard = _transcript("A lion walks.", (Segment(0.2, 1.4, "A lion"), Segment(1.6, 2.9, "walks.")))
    return [
        SceneOutcome(
            _recording(tmp_path, "one", 1), SceneStatus.OK, heard, "A lion walks", 77, media
        ),
        SceneOutcome(_recording(tmp_path, "two", 2), SceneStatus.NO_SPEECH, _transcript("", ())),
        SceneOutcome(_recording(tmp_path, "<b>3</b>", 3), SceneStatus.FAILED, error="not audio"),
    ]


TIMELINE = [
    TimelineEntry("one", 0.0, 3.0),
    TimelineEntry("two", 3.0, 6.0),
    TimelineEntry("<b>3</b>", 6.0, 8.0),
]


def test_manifest_has_every_interface_column_in_order(outcomes: list[SceneOutcome]) -> None:
    assert tuple(INTERFACE_COLUMNS.split(", ")) == MANIFEST_COLUMNS
    frame = manifest_frame(outcomes, TIMELINE, {}, "draft", "sdxl")
    assert tuple(frame.columns[: len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    assert frame["status"].tolist() == ["ok", "no_speech", "failed"]
    assert frame["start_s"].tolist() == [0.0, 3.0, 6.0]
    assert frame.loc[2, "error"] == "not audio"


def test_manifest_round_trips_through_csv(outcomes: list[SceneOutcome], tmp_path: Path) -> None:
    published = publish_scene_files(outcomes, tmp_path / "target")
    frame = manifest_frame(outcomes, TIMELINE, published, "draft", "sdxl")
    frame.to_csv(tmp_path / "manifest.csv", index=False)
    loaded = pd.read_csv(tmp_path / "manifest.csv", keep_default_na=False)
    assert loaded.loc[0, "image_path"] == "scenes/one/image.png"
    assert (tmp_path / "target" / "scenes" / "one" / "clip.mp4").read_bytes() == b"mp4"
    assert loaded.loc[0, "seed"] == "77", "seeds are written as integers, not 77.0"
    assert loaded.loc[1, "seed"] == ""


def test_srt_cues_sit_on_the_storyboard_timeline(outcomes: list[SceneOutcome]) -> None:
    text = srt_text(caption_cues(outcomes, TIMELINE))
    assert text.splitlines()[:3] == ["1", "00:00:00,200 --> 00:00:01,400", "A lion"]
    assert "00:00:01,600 --> 00:00:02,900" in text
    assert text.count("-->") == 2
    vtt = vtt_text(caption_cues(outcomes, TIMELINE))
    assert vtt.startswith("WEBVTT\n\n00:00:00.200 --> 00:00:01.400\nA lion\n")


def test_scene_folders_never_leave_scenes(tmp_path: Path) -> None:
    taken: set[str] = set()
    names = [scene_dir_name(s, taken) for s in ["..", "a/b", "<img src=x>", "ok", "ok", "été"]]
    assert names == ["scene", "a_b", "img_src_x", "ok", "ok-2", "été"]
    for name in names:
        assert (tmp_path / "scenes" / name).resolve().parent == (tmp_path / "scenes").resolve()


def test_reviews_from_the_studio_fill_the_review_columns_and_age_with_new_takes(
    outcomes: list[SceneOutcome], tmp_path: Path
) -> None:
    review_file = tmp_path / "target" / "review.json"
    review_file.parent.mkdir()
    review_file.write_text(
        json.dumps(
            {
                "one": {
                    "verdict": "approved",
                    "comment": "lovely",
                    "audio_sha256": "ab" * 32,
                    "seed": 77,
                },
                "two": {
                    "verdict": "needs_changes",
                    "comment": "<i>louder</i>",
                    "audio_sha256": "an earlier take",
                    "seed": None,
                },
                "<b>3</b>": {"verdict": "not a verdict"},
            }
        )
    )
    reviews = read_reviews.fn(str(tmp_path / "target"))
    frame = manifest_frame(outcomes, TIMELINE, {}, "draft", "sdxl", reviews)
    assert frame["review"].tolist() == ["approved", "outdated", ""]
    assert frame["review_comment"].tolist() == ["lovely", "<i>louder</i>", ""]
    assert read_reviews.fn(str(tmp_path / "nowhere")) == {}
    review_file.write_text("{not json")
    assert read_reviews.fn(str(tmp_path / "target")) == {}
