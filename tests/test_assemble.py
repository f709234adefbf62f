from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from clients.generation.draft import DraftBackend
from clients.media.ffmpeg import probe
from clients.media.yuv import rgb_to_yuv
from configs.settings import AssemblySettings
from domain.media import ClipRequest, ImageRequest
from domain.scene import Segment
from tasks.assembly.narration import normalise_loudness
from tasks.assembly.overlay import ken_burns, scene_label, scene_sources
from tasks.assembly.render import assemble_storyboard, render_scene
from tasks.assembly.timeline import (
    SceneCut,
    active_caption,
    frames_for,
    frames_of_padded,
    samples_for,
    source_frame_index,
    timeline_frames,
)
from tests.helpers import write_wav


@pytest.mark.parametrize("method", ["pingpong", "stretch", "hold"])
def test_source_frames_stay_in_range_and_start_at_the_first(method: str) -> None:
    indices = [source_frame_index(k, 240, 24, 25, 6, method) for k in range(240)]  # type: ignore[arg-type]
    assert indices[0] == 0
    assert all(0 <= index < 25 for index in indices)


def test_pingpong_bounces_instead_of_jumping_back() -> None:
    indices = [source_frame_index(k, 480, 24, 25, 6, "pingpong") for k in range(480)]
    steps = {abs(b - a) for a, b in itertools.pairwise(indices)}
    assert steps <= {0, 1}
    assert max(indices) == 24


def test_stretch_spreads_the_clip_over_the_whole_span() -> None:
    indices = [source_frame_index(k, 100, 24, 25, 6, "stretch") for k in range(100)]
    assert indices == sorted(indices)
    assert indices[-1] == 24


@pytest.mark.parametrize("method", ["pingpong", "stretch", "hold"])
def test_a_clip_longer_than_its_span_plays_at_its_own_rate(method: str) -> None:
    """81 frames at 16 fps (a Wan clip, 5.06 s) in a 3-s span at 24 fps: 2 output frames for
    3 of the clip's, never sped up to fit it all in."""
    indices = [source_frame_index(k, 72, 24, 81, 16, method) for k in range(72)]  # type: ignore[arg-type]
    assert indices == [k * 16 // 24 for k in range(72)]


def test_timeline_boundaries_do_not_drift() -> None:
    spans = timeline_frames([25] * 300, 24)
    assert [start for start, _, _ in spans[1:]] == [end for _, end, _ in spans[:-1]]
    assert spans[-1][1] == 300 * 25 / 24 and spans[-1][2] == 25


@pytest.mark.parametrize(("rate", "fps"), [(48_000, 24), (44_100, 24), (48_000, 30), (16_000, 25)])
def test_a_scenes_frames_come_from_its_own_narration_padded_to_whole_frames(
    rate: int, fps: int
) -> None:
    for samples in (1, rate // fps - 1, rate // fps, rate // fps + 1, 3 * rate + 17):
        frames = frames_for(samples, rate, fps)
        padded = samples_for(frames, rate, fps)
        assert padded >= samples and (frames - 1) * rate / fps < samples <= frames * rate / fps
        assert frames_of_padded(padded, rate, fps) == frames


def test_active_caption_follows_segments_and_lingers_briefly() -> None:
    segments = [Segment(0.5, 2.0, "one"), Segment(2.5, 4.0, "two")]
    assert active_caption(segments, 0.1) is None
    assert active_caption(segments, 1.0) == 0
    assert active_caption(segments, 2.2) == 0
    assert active_caption(segments, 3.0) == 1
    assert active_caption(segments, 5.5) is None


def _draft_clip(folder: Path, seed: int) -> Path:
    backend = DraftBackend()
    request = ImageRequest(f"scene {seed}", "", "sdxl", seed, 5.0, "DDIM", 25, label=f"S{seed}")
    image = backend.generate_image(request)
    clip = backend.generate_clip(ClipRequest(image.data, seed, 1.8, 127))
    path = folder / f"clip{seed}.mp4"
    path.write_bytes(clip.data)
    return path


def test_assembled_video_is_h264_aac_as_long_as_the_narrations(tmp_path: Path) -> None:
    narrations = [
        write_wav(tmp_path / "a.wav", 1.5, 440),
        write_wav(tmp_path / "b.wav", 6.2, 660),
        tmp_path / "broken.wav",
    ]
    narrations[2].write_bytes(b"RIFF not really a wav")
    cuts = [
        SceneCut(
            "a", "Scene 1 · a", narrations[0], (Segment(0, 1.5, "first"),), _draft_clip(tmp_path, 1)
        ),
        SceneCut("b", "Scene 2 · b", narrations[1], (), _draft_clip(tmp_path, 2)),
        SceneCut(
            "broken",
            "Scene 3",
            narrations[2],
            placeholder_heading="Failed",
            placeholder_detail="bad",
        ),
    ]
    settings = AssemblySettings(fps=12, placeholder_seconds=2.0)
    output = tmp_path / "out" / "storyboard.mp4"
    timeline = assemble_storyboard(cuts, settings, output).timeline

    expected = 1.5 + 6.25 + 2.0  # 6.2 s of narration padded to 75 whole frames at 12 fps
    info = probe(output)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (1024, 576)
    assert info.duration_s == pytest.approx(expected, rel=0.03)
    assert [(e.scene_id, e.start_s, e.end_s) for e in timeline] == [
        ("a", 0.0, 1.5),
        ("b", 1.5, 7.75),
        ("broken", 7.75, 9.75),
    ]
    assert not list(output.parent.glob(".assemble-*")), "work files must be cleaned up"

    with av.open(str(output)) as container:
        audio = np.concatenate(
            [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
        )
    rate = 48_000
    loud_in_b = np.abs(audio[int(3 * rate) : int(5 * rate)]).mean()
    quiet_in_placeholder = np.abs(audio[int(8.2 * rate) : int(9.4 * rate)]).mean()
    assert loud_in_b > 0.05 and quiet_in_placeholder < 0.01


def test_duration_override_pads_the_narration(tmp_path: Path) -> None:
    narration = write_wav(tmp_path / "a.wav", 1.0, 440)
    cuts = [
        SceneCut("a", "a", narration, clip_path=_draft_clip(tmp_path, 3), duration_override_s=3.0)
    ]
    timeline = assemble_storyboard(cuts, AssemblySettings(fps=12), tmp_path / "v.mp4").timeline
    assert timeline[0].end_s == pytest.approx(3.0)
    assert probe(tmp_path / "v.mp4").duration_s == pytest.approx(3.0, rel=0.03)


def test_narrations_are_brought_to_one_loudness() -> None:
    rate = 16_000
    t = np.arange(rate * 2) / rate
    quiet = (0.03 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    loud = (0.6 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    levels = []
    for samples in (quiet, loud):
        out = normalise_loudness(samples, rate, -20.0)
        levels.append(20 * np.log10(np.sqrt(np.mean(out**2))))
        assert np.max(np.abs(out)) <= 0.98
    assert levels[0] == pytest.approx(-20.0, abs=0.5)
    assert levels[1] == pytest.approx(-20.0, abs=0.5)
    silence = np.zeros(rate, np.float32)
    assert not normalise_loudness(silence, rate, -20.0).any()


def _band_level(samples: np.ndarray, rate: int, frequency: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    bins = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (bins > frequency - 20) & (bins < frequency + 20)
    return float(20 * np.log10(spectrum[band].max() + 1e-9))


def test_background_music_ducks_under_the_narration(tmp_path: Path) -> None:
    rate = 16_000
    t = np.arange(rate * 3) / rate
    speech = np.where(t < 1.2, 0.3 * np.sin(2 * np.pi * 300 * t), 0.0)
    narration = tmp_path / "n.wav"
    import wave

    with wave.open(str(narration), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((speech * 32767).astype("<i2").tobytes())
    music = write_wav(tmp_path / "music.wav", 1.0, 1000)
    cuts = [SceneCut("a", "a", narration, clip_path=_draft_clip(tmp_path, 4))]
    output = tmp_path / "with_music.mp4"
    assemble_storyboard(cuts, AssemblySettings(fps=12), output, music=music)
    assert probe(output).duration_s == pytest.approx(3.0, rel=0.03)
    with av.open(str(output)) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    out_rate = 48_000
    under_speech = audio[int(0.4 * out_rate) : int(1.0 * out_rate)]
    alone = audio[int(2.0 * out_rate) : int(2.6 * out_rate)]
    assert _band_level(alone, out_rate, 1000) - _band_level(under_speech, out_rate, 1000) > 6.0
    assert _band_level(alone, out_rate, 1000) > _band_level(alone, out_rate, 300) + 20


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]


@pytest.mark.parametrize("crossfade", [0.0, 0.5])
def test_crossfades_dissolve_into_the_next_scene_without_moving_it(
    tmp_path: Path, crossfade: float
) -> None:
    cuts = [
        SceneCut(
            "a", "A", write_wav(tmp_path / "a.wav", 2.0, 440), clip_path=_draft_clip(tmp_path, 5)
        ),
        SceneCut(
            "b", "B", write_wav(tmp_path / "b.wav", 2.0, 440), clip_path=_draft_clip(tmp_path, 6)
        ),
    ]
    settings = AssemblySettings(fps=12, crossfade_s=crossfade, captions=False)
    output = tmp_path / f"x{crossfade}.mp4"
    timeline = assemble_storyboard(cuts, settings, output).timeline
    assert [(e.start_s, e.end_s) for e in timeline] == [(0.0, 2.0), (2.0, 4.0)]
    frames = _frames(output)
    assert len(frames) == 48
    jump = np.abs(frames[23] - frames[24]).mean()
    if crossfade:
        assert jump < 8.0, "the last frame of scene a has nearly become scene b"
        assert np.abs(frames[17] - frames[18]).mean() > 0.5
    else:
        assert jump > 8.0, "a hard cut"


def test_ken_burns_moves_slowly_over_the_whole_narration(tmp_path: Path) -> None:
    cuts = [
        SceneCut(
            "a", "A", write_wav(tmp_path / "a.wav", 6.0, 440), clip_path=_draft_clip(tmp_path, 7)
        )
    ]
    output = tmp_path / "kb.mp4"
    assemble_storyboard(cuts, AssemblySettings(fps=12, fit="kenburns", captions=False), output)
    frames = _frames(output)
    assert len(frames) == 72
    steps = [np.abs(a - b).mean() for a, b in itertools.pairwise(frames)]
    assert max(steps) < 6.0, "no jumps"
    assert np.abs(frames[0] - frames[-1]).mean() > 5.0, "it moves"


@pytest.mark.parametrize(("fps", "frame_count"), [(25, 29), (30, 123)])
def test_a_scene_segment_has_exactly_its_frames(tmp_path: Path, fps: int, frame_count: int) -> None:
    """Counts where frame_count / fps * fps falls just short of frame_count in floating point."""
    cut = SceneCut("a", "A", None, placeholder_heading="Failed", placeholder_detail="bad")
    settings = AssemblySettings(width=128, height=72, fps=fps)
    sources, source_fps = scene_sources(cut, settings)
    output = tmp_path / "scene.mp4"
    render_scene(cut, sources, source_fps, frame_count, settings, output)
    assert len(_frames(output)) == frame_count
    assert probe(output).video_codec == "h264"


def test_the_push_in_keeps_a_panels_header_whole() -> None:
    """A 1:1 storyboard pushes in over its still: the top band (a draft panel's header, with
    its label, prompt and palette) stays in the frame to the end."""
    still = Image.new("RGB", (256, 256), (40, 90, 40))
    ImageDraw.Draw(still).rectangle((0, 0, 255, 11), fill=(230, 20, 20))
    first, last = (ken_burns(rgb_to_yuv(np.asarray(still)), progress) for progress in (0.0, 1.0))
    red = rgb_to_yuv(np.full((2, 2, 3), (230, 20, 20), np.uint8))
    assert np.abs(last.v[1].astype(int) - red.v[0, 0]).max() <= 2, "the header's red band is kept"
    assert np.abs(last.y[2].astype(int) - red.y[0, 0]).max() <= 2
    assert not np.array_equal(first.y, last.y), "it pushes in"


def test_no_label_is_drawn_over_a_picture_that_carries_its_own() -> None:
    settings = AssemblySettings(width=256, height=144, fps=8)
    drawn = SceneCut("dawn", "Scene 1 · dawn", None, clip_path=Path("clip.mp4"))
    draft = replace(drawn, picture_labelled=True)
    assert scene_label(drawn, settings) == "Scene 1 · dawn"
    assert scene_label(draft, settings) is None
