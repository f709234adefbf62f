"""A 24-scene storyboard of mixed lengths and statuses, from assembly to the review package."""

from __future__ import annotations

import html
import itertools
import re
from pathlib import Path

import pytest

from clients.generation.draft import DraftBackend
from clients.media.ffmpeg import probe
from configs.settings import AssemblySettings
from domain.media import ClipRequest, ImageRequest
from domain.report import RunReport
from domain.scene import GeneratedMedia, Recording, SceneOutcome, SceneStatus, Segment, Transcript
from tasks.assemble import scene_cut
from tasks.assembly.render import assemble_storyboard
from tasks.manifest import write_outputs
from tasks.review import write_review
from tests.helpers import write_wav

pytestmark = pytest.mark.slow
STATUSES = [SceneStatus.OK] * 4 + [SceneStatus.NO_SPEECH, SceneStatus.FILTERED]


def _media(folder: Path, seed: int) -> GeneratedMedia:
    backend = DraftBackend()
    image = backend.generate_image(ImageRequest(f"scene {seed}", "", "sdxl", seed, 5, "DDIM", 25))
    clip = backend.generate_clip(ClipRequest(image.data, seed, 1.8, 127))
    (folder / f"i{seed}.png").write_bytes(image.data)
    (folder / f"c{seed}.mp4").write_bytes(clip.data)
    return GeneratedMedia(folder / f"i{seed}.png", folder / f"c{seed}.mp4", seed, "sdxl", "draft")


def _outcomes(folder: Path, count: int) -> list[SceneOutcome]:
    media = [_media(folder, seed) for seed in range(1, 4)]
    outcomes = []
    for index in range(count):
        seconds = 1.0 + (index * 7 % 13) * 0.6
        path = write_wav(folder / f"n{index}.wav", seconds, 220 + 20 * (index % 5))
        status = STATUSES[index % len(STATUSES)]
        scene_id = f"scene {index + 1} <b>&</b>"
        recording = Recording(scene_id, index + 1, path, path.as_uri(), f"{index:064d}")
        said = f"words of scene {index + 1}"
        segments = (Segment(0.1, seconds / 2, said), Segment(seconds / 2, seconds - 0.05, "more"))
        transcript = Transcript("en", 0.9, said, said, segments, seconds, False, 0.1)
        if status is SceneStatus.NO_SPEECH:
            outcomes.append(
                SceneOutcome(
                    recording, status, Transcript("en", 0.0, "", "", (), seconds, True, 0.1)
                )
            )
        elif status is SceneStatus.FILTERED:
            outcomes.append(SceneOutcome(recording, status, transcript, "p", 5, error="refused"))
        else:
            outcomes.append(SceneOutcome(recording, status, transcript, "p", 5, media[index % 3]))
    return outcomes


def test_24_scenes_render_with_every_output_and_consistent_timing(tmp_path: Path) -> None:
    outcomes = _outcomes(tmp_path, 24)
    target = tmp_path / "out"
    settings = AssemblySettings(fps=12)
    timeline = assemble_storyboard(
        [scene_cut(o) for o in outcomes], settings, target / "storyboard.mp4"
    ).timeline
    published = write_outputs(outcomes, timeline, target, "draft", "sdxl")
    report = RunReport(
        "mixed",
        "Mixed <story>",
        "file:///x",
        str(target),
        "draft",
        "faster-whisper",
        "base",
        "thread",
        scenes={"ok": 16},
    )
    write_review(outcomes, timeline, published, report, target, 16 / 9)

    for name in (
        "storyboard.mp4",
        "manifest.csv",
        "storyboard.srt",
        "storyboard.vtt",
        "index.html",
        "contact_sheet.png",
    ):
        assert (target / name).is_file(), name
    video = probe(target / "storyboard.mp4")
    assert timeline[-1].end_s == pytest.approx(video.duration_s, abs=1 / 12 + 0.03)
    for before, after in itertools.pairwise(timeline):
        assert before.end_s == after.start_s

    spans = [(entry.start_s, entry.end_s) for entry in timeline]
    cue_times = re.findall(
        r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})",
        (target / "storyboard.srt").read_text(),
    )
    assert len(cue_times) == 2 * sum(o.status is not SceneStatus.NO_SPEECH for o in outcomes)
    for cue in cue_times:
        h, m, s, ms, h2, m2, s2, ms2 = map(int, cue)
        start, end = h * 3600 + m * 60 + s + ms / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        assert any(lo <= start < hi and end <= hi + 0.001 for lo, hi in spans)
    assert end <= video.duration_s

    page = (target / "index.html").read_text()
    for outcome in outcomes:
        assert f"<h2>{html.escape(outcome.scene_id)}</h2>" in page
    assert page.count('<article class="card') == 24
    assert "<b>&</b>" not in page and "Mixed &lt;story&gt;" in page


def test_portrait_storyboards_fill_the_frame(tmp_path: Path) -> None:
    outcomes = _outcomes(tmp_path, 2)
    settings = AssemblySettings(width=576, height=1024, fps=12)
    output = tmp_path / "portrait.mp4"
    assemble_storyboard([scene_cut(o) for o in outcomes], settings, output)
    info = probe(output)
    assert (info.width, info.height) == (576, 1024)


def test_portrait_scenes_use_their_own_portrait_image_not_a_crop_of_the_clip(
    tmp_path: Path,
) -> None:
    import av
    import numpy as np
    from PIL import Image

    backend = DraftBackend()
    request = ImageRequest("a tall tower", "", "sdxl", 3, 5, "DDIM", 25, width=576, height=1024)
    image = backend.generate_image(request)
    assert Image.open(__import__("io").BytesIO(image.data)).size == (576, 1024)
    (tmp_path / "tall.png").write_bytes(image.data)
    clip = backend.generate_clip(ClipRequest(image.data, 3, 1.8, 127))
    (tmp_path / "tall.mp4").write_bytes(clip.data)
    media = GeneratedMedia(tmp_path / "tall.png", tmp_path / "tall.mp4", 3, "sdxl", "draft")
    path = write_wav(tmp_path / "n.wav", 2.0, 300)
    recording = Recording("tall", 1, path, path.as_uri(), "0" * 64)
    transcript = Transcript("en", 0.9, "x", "x", (), 2.0, False, 0.1)
    outcome = SceneOutcome(recording, SceneStatus.OK, transcript, "p", 3, media)
    settings = AssemblySettings(width=576, height=1024, fps=12, captions=False, scene_labels=False)
    output = tmp_path / "tall_story.mp4"
    assemble_storyboard([scene_cut(outcome)], settings, output)
    with av.open(str(output)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    panel = np.asarray(Image.open(tmp_path / "tall.png").convert("RGB")).astype(int)
    assert np.abs(first - panel).mean() < 12.0, "the first frame is the whole portrait panel"
