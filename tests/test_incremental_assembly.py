"""Incremental assembly: a re-run encodes only what changed, and the video is the same as a
full render of the same inputs."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import av
import numpy as np
import pytest

from clients.generation.draft import DraftBackend
from clients.media.ffmpeg import probe
from configs.settings import AssemblySettings
from domain.layout import ASSEMBLY
from domain.media import ClipRequest, ImageRequest
from domain.scene import Recording, Segment
from tasks.assembly import aac
from tasks.assembly.render import assemble_storyboard
from tasks.assembly.store import AssemblyStore
from tasks.assembly.timeline import SceneCut
from tasks.ingest import file_sha256
from tasks.narration_ahead import NarrationSource, begin_narration, narration_encoded_ahead
from tests.helpers import write_wav

SETTINGS = AssemblySettings(fps=12, width=320, height=180)


def _clip(folder: Path, seed: int) -> Path:
    backend = DraftBackend()
    request = ImageRequest(f"scene {seed}", "", "sdxl", seed, 5.0, "DDIM", 25, label=f"S{seed}")
    image = backend.generate_image(request)
    path = folder / f"clip{seed}.mp4"
    path.write_bytes(backend.generate_clip(ClipRequest(image.data, seed, 1.8, 127)).data)
    return path


def _cuts(folder: Path) -> list[SceneCut]:
    return [
        SceneCut(
            f"s{index}",
            f"Scene {index}",
            write_wav(folder / f"n{index}.wav", 1.0 + index * 0.5, 300 + 100 * index),
            (Segment(0.1, 0.9, f"caption {index}"),),
            _clip(folder, index + 1),
        )
        for index in range(4)
    ]


def _frames(video: Path) -> list[np.ndarray]:
    with av.open(str(video)) as container:
        return [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]


def _audio(video: Path) -> np.ndarray:
    with av.open(str(video)) as container:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])


def test_an_unchanged_rerun_encodes_nothing_and_gives_the_same_video(tmp_path: Path) -> None:
    cuts, store = _cuts(tmp_path), AssemblyStore(tmp_path / "store")
    first = assemble_storyboard(cuts, SETTINGS, tmp_path / "one.mp4", store=store)
    again = assemble_storyboard(cuts, SETTINGS, tmp_path / "two.mp4", store=store)

    assert (first.segments_encoded, first.track_encoded) == (4, True)
    assert (again.segments_encoded, again.segments_reused, again.track_encoded) == (0, 4, False)
    assert again.encoded_nothing and not first.encoded_nothing
    assert again.timeline == first.timeline
    one, two = _frames(tmp_path / "one.mp4"), _frames(tmp_path / "two.mp4")
    assert len(one) == len(two) == round(sum(1.0 + i * 0.5 for i in range(4)) * 12)
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert np.array_equal(_audio(tmp_path / "one.mp4"), _audio(tmp_path / "two.mp4"))


def test_one_changed_clip_re_encodes_only_its_scene(tmp_path: Path) -> None:
    cuts, store = _cuts(tmp_path), AssemblyStore(tmp_path / "store")
    assemble_storyboard(cuts, SETTINGS, tmp_path / "before.mp4", store=store)
    cuts[2] = dataclasses.replace(cuts[2], clip_path=_clip(tmp_path, 99))
    after = assemble_storyboard(cuts, SETTINGS, tmp_path / "after.mp4", store=store)
    full = assemble_storyboard(cuts, SETTINGS, tmp_path / "full.mp4")

    assert (after.segments_encoded, after.segments_reused, after.track_encoded) == (1, 3, False)
    assert full.segments_encoded == 4, "without a store everything is encoded"
    before, incremental, whole = (
        _frames(tmp_path / name) for name in ("before.mp4", "after.mp4", "full.mp4")
    )
    start, end = (
        round(entry * 12) for entry in (after.timeline[2].start_s, after.timeline[2].end_s)
    )
    assert len(before) == len(incremental) == len(whole)
    for index, (old, new, reference) in enumerate(zip(before, incremental, whole, strict=True)):
        assert np.array_equal(new, reference), f"frame {index} differs from a full render"
        changed = not np.array_equal(old, new)
        assert changed == (start <= index < end), f"frame {index}"


def test_a_replaced_recording_re_encodes_the_narration_and_only_its_captions(
    tmp_path: Path,
) -> None:
    cuts, store = _cuts(tmp_path), AssemblyStore(tmp_path / "store")
    first = assemble_storyboard(cuts, SETTINGS, tmp_path / "before.mp4", store=store)
    recording = write_wav(tmp_path / "retake.wav", 1.5, 900)
    cuts[1] = dataclasses.replace(
        cuts[1], narration=recording, segments=(Segment(0.2, 1.3, "a new take"),)
    )
    after = assemble_storyboard(cuts, SETTINGS, tmp_path / "after.mp4", store=store)

    assert (after.segments_encoded, after.track_encoded) == (1, True)
    assert after.timeline == first.timeline, "a recording of the same length moves nothing"
    assert probe(tmp_path / "after.mp4").duration_s == pytest.approx(
        probe(tmp_path / "before.mp4").duration_s, abs=0.05
    )
    assert not np.array_equal(_audio(tmp_path / "before.mp4"), _audio(tmp_path / "after.mp4"))


@pytest.mark.parametrize("seconds", [0.7, 3.0])
def test_a_retake_of_another_length_re_encodes_only_its_own_scene(
    tmp_path: Path, seconds: float
) -> None:
    cuts, store = _cuts(tmp_path), AssemblyStore(tmp_path / "store")
    before = assemble_storyboard(cuts, SETTINGS, tmp_path / "before.mp4", store=store)
    cuts[1] = dataclasses.replace(cuts[1], narration=write_wav(tmp_path / "retake.wav", seconds))
    after = assemble_storyboard(cuts, SETTINGS, tmp_path / "after.mp4", store=store)

    assert (after.segments_encoded, after.segments_reused) == (1, 3)
    spans = [entry.end_s - entry.start_s for entry in after.timeline]
    assert spans[1] == pytest.approx(seconds, abs=1 / SETTINGS.fps), "the span is the retake's"
    assert spans[2:] == [e.end_s - e.start_s for e in before.timeline[2:]]
    old, new = _frames(tmp_path / "before.mp4"), _frames(tmp_path / "after.mp4")
    assert len(new) == round(after.timeline[-1].end_s * SETTINGS.fps)
    moved = round((after.timeline[2].start_s - before.timeline[2].start_s) * SETTINGS.fps)
    untouched = range(round(before.timeline[2].start_s * SETTINGS.fps), len(old))
    assert all(np.array_equal(old[k], new[k + moved]) for k in untouched), (
        "later scenes as they were"
    )


def test_a_retake_re_encodes_no_narration_chunk_before_its_scene(tmp_path: Path) -> None:
    """Four 20-s scenes are three chunks of about 30 s: a retake of the third scene (from 40 s)
    keeps the first chunk and re-encodes the two from its start to the end."""
    settings = SETTINGS.model_copy(update={"width": 64, "height": 36, "fps": 4})
    cuts = [
        dataclasses.replace(cut, narration=write_wav(tmp_path / f"long{i}.wav", 20.0, 200 + i))
        for i, cut in enumerate(_cuts(tmp_path))
    ]
    store = AssemblyStore(tmp_path / "store")
    assert (
        assemble_storyboard(cuts, settings, tmp_path / "a.mp4", store=store).summary()[
            "narration_chunks_encoded"
        ]
        == 3
    )
    cuts[2] = dataclasses.replace(cuts[2], narration=write_wav(tmp_path / "retake.wav", 12.0))
    after = assemble_storyboard(cuts, settings, tmp_path / "b.mp4", store=store)
    assert (after.segments_encoded, after.narration_pieces_encoded) == (1, 2)
    assert after.timeline[3].start_s == 52.0


@pytest.mark.parametrize(
    "change",
    [
        {"video_crf": 30},
        {"captions": False},
        {"scene_labels": False},
        {"fit": "stretch"},
    ],
)
def test_a_visual_setting_re_encodes_every_scene_and_an_audio_setting_none(
    tmp_path: Path, change: dict[str, object]
) -> None:
    cuts, store = _cuts(tmp_path), AssemblyStore(tmp_path / "store")
    assemble_storyboard(cuts, SETTINGS, tmp_path / "a.mp4", store=store)
    visual = SETTINGS.model_copy(update=change)
    assert assemble_storyboard(cuts, visual, tmp_path / "b.mp4", store=store).segments_encoded == 4
    louder = SETTINGS.model_copy(update={"loudness_dbfs": -14.0})
    audio = assemble_storyboard(cuts, louder, tmp_path / "c.mp4", store=store)
    assert (audio.segments_encoded, audio.track_encoded) == (0, True)


def test_a_crossfade_re_encodes_the_scene_that_dissolves_into_a_changed_one(
    tmp_path: Path,
) -> None:
    settings = SETTINGS.model_copy(update={"crossfade_s": 0.3})
    cuts, store = _cuts(tmp_path), AssemblyStore(tmp_path / "store")
    assemble_storyboard(cuts, settings, tmp_path / "a.mp4", store=store)
    cuts[2] = dataclasses.replace(cuts[2], clip_path=_clip(tmp_path, 77))
    after = assemble_storyboard(cuts, settings, tmp_path / "b.mp4", store=store)
    assert after.segments_encoded == 2, "scene 2 dissolves into the new scene 3"


def test_a_store_path_with_a_quote_still_joins(tmp_path: Path) -> None:
    cuts = _cuts(tmp_path)[:2]
    store = AssemblyStore(tmp_path / "it's a store")
    made = assemble_storyboard(cuts, SETTINGS, tmp_path / "v.mp4", store=store)
    assert len(_frames(tmp_path / "v.mp4")) == round(made.timeline[-1].end_s * 12)


def _spliced_tracks(cache: Path) -> list[Path]:
    return sorted((cache / ASSEMBLY / "tracks").rglob("*.m4a"))


def test_the_narration_encoded_ahead_is_what_the_assembly_finds_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narration depends on the recordings alone: encoded and spliced while the scenes are
    still being made, the assembly then finds every piece of it and the track, the silence of a
    recording refused at ingest or too long to transcribe included; the pieces encoded ahead
    are counted."""
    cuts = [
        dataclasses.replace(cut, narration_sha256=file_sha256(cut.narration))
        for cut in _cuts(tmp_path)
        if cut.narration is not None
    ]
    recordings = [
        Recording(cut.scene_id, index + 1, cut.narration, "", cut.narration_sha256)
        for index, cut in enumerate(cuts)
        if cut.narration is not None
    ]
    recordings[2] = dataclasses.replace(recordings[2], problem="a duplicate scene id")
    cuts[2] = dataclasses.replace(cuts[2], narration=None, clip_path=None)
    # the last recording (2.5 s) is longer than the transcription takes: refused, silent
    cuts[3] = dataclasses.replace(cuts[3], narration=None, clip_path=None)
    cache = tmp_path / "cache"
    with narration_encoded_ahead(NarrationSource(tuple(recordings), SETTINGS, cache, 2.2)) as ahead:
        pass
    assert ahead.pieces_encoded() == 1
    assert len(_spliced_tracks(cache)) == 1, "the track is spliced ahead too"
    splice = aac.splice_chunks
    monkeypatch.setattr(aac, "splice_chunks", _refused)
    store = AssemblyStore(cache / ASSEMBLY)
    assembled = assemble_storyboard(cuts, SETTINGS, tmp_path / "v.mp4", store=store)
    assert (assembled.narration_pieces_encoded, assembled.segments_encoded) == (0, 4)
    monkeypatch.setattr(aac, "splice_chunks", splice)

    retake = write_wav(tmp_path / "retake.wav", 1.9, 700)
    recordings[1] = dataclasses.replace(recordings[1], path=retake, sha256=file_sha256(retake))
    # begun before the flow (while the Prefect server starts), then taken over by it
    begun = begin_narration(NarrationSource(tuple(recordings), SETTINGS, cache, 2.2))
    assert begun.future is not None
    begun.future.result()
    with narration_encoded_ahead(NarrationSource(tuple(recordings), SETTINGS, cache, 2.2)) as again:
        pass
    assert again.pieces_encoded() == 1, "the piece encoded before the flow is counted in it"
    assert len(_spliced_tracks(cache)) == 2
    monkeypatch.setattr(aac, "splice_chunks", _refused)
    cuts[1] = dataclasses.replace(cuts[1], narration=retake, narration_sha256=file_sha256(retake))
    after = assemble_storyboard(cuts, SETTINGS, tmp_path / "w.mp4", store=store)
    assert (after.narration_pieces_encoded, after.segments_encoded) == (0, 1)


def _refused(*_: object) -> None:
    raise AssertionError("the assembly spliced a track the pass ahead had spliced")


def test_the_pictures_start_while_the_narration_begun_ahead_is_still_ending(
    tmp_path: Path,
) -> None:
    """The assembly waits for the narration encoded ahead of it only where it needs the
    narration: its scenes' segments are encoded meanwhile."""
    cuts, store = _cuts(tmp_path), AssemblyStore(tmp_path / "store")

    def narration_ready() -> None:  # ends only once a segment is in the store
        deadline = time.monotonic() + 120
        while not list((store.root / "segments").rglob("*.mp4")):
            assert time.monotonic() < deadline, "the pictures waited for the narration"
            time.sleep(0.05)

    made = assemble_storyboard(
        cuts, SETTINGS, tmp_path / "v.mp4", store=store, narration_ready=narration_ready
    )
    assert (made.segments_encoded, made.narration_pieces_encoded) == (4, 1)
    assert probe(tmp_path / "v.mp4").duration_s == pytest.approx(made.timeline[-1].end_s, abs=0.1)
