"""Rendering: each scene as its own short video-only H.264 segment, a few scenes at a time,
then the segments joined and the narration muxed in, both by stream copy.

Segments and the encoded narration come from the assembly store (`tasks/assembly/store.py`)
when their key is there, so a re-run encodes only the scenes that changed.

Every segment is encoded by the one H.264 encoder (`clients.media.video.write_planes`, its
frames already in the encoder's 4:2:0 planes) with exactly the frames its span on the audio
timeline rounds to. Memory stays flat whatever the
number of scenes: it is bounded by the workers, not by the scenes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from clients.media.video import Plane, VideoEncoding, write_planes
from clients.media.yuv import YuvFrame
from configs.settings import AssemblySettings, FitMethod
from domain.scene import TimelineEntry
from tasks.assembly.aac import encoded_chunks, spliced_track
from tasks.assembly.mux import encode_track, join_segments
from tasks.assembly.narration import SceneNarration, scene_narration, write_narration_track
from tasks.assembly.overlay import first_frame, ken_burns, overlay, scene_label, scene_sources
from tasks.assembly.store import AssemblyStore, segment_key, track_key
from tasks.assembly.timeline import SceneCut, active_caption, source_frame_index, timeline_frames


def scene_frames(
    cut: SceneCut,
    sources: Sequence[YuvFrame],
    source_fps: float,
    frame_count: int,
    settings: AssemblySettings,
) -> Callable[[int, int | None], YuvFrame]:
    """picture(output index, caption index): a scene's frame before any dissolve.

    A clip's frames are fitted to the span and each (source frame, caption) pair is drawn
    once; a still (or `fit: kenburns`) gets a slow push-in drawn afresh for every frame.
    """
    fps = settings.fps
    label = scene_label(cut, settings)
    push_in = cut.clip_path is not None and (settings.fit == "kenburns" or source_fps == 0.0)
    still = sources[len(sources) // 2]
    method: FitMethod = "pingpong" if settings.fit == "kenburns" else settings.fit
    baked: dict[tuple[int, int | None], YuvFrame] = {}

    def picture(index: int, caption: int | None) -> YuvFrame:
        text = cut.segments[caption].text if caption is not None else None
        if push_in:
            return overlay(ken_burns(still, index / max(1, frame_count - 1)), label, text)
        source = source_frame_index(
            output_index=index,
            output_frames=frame_count,
            output_fps=fps,
            source_frames=len(sources),
            source_fps=source_fps,
            method=method,
        )
        if (source, caption) not in baked:
            baked[(source, caption)] = overlay(sources[source], label, text)
        return baked[(source, caption)]

    return picture


def render_scene(
    cut: SceneCut,
    sources: Sequence[YuvFrame],
    source_fps: float,
    frame_count: int,
    settings: AssemblySettings,
    output: Path,
    next_frame: YuvFrame | None = None,
) -> None:
    """One scene as a video-only H.264 segment of exactly `frame_count` frames.

    With `next_frame` (the next scene's first frame) and `settings.crossfade_s`, the scene's
    last frames dissolve into it, so the cut lands on the scene boundary and never moves the
    narration.
    """
    fps = settings.fps
    fade = min(round(settings.crossfade_s * fps), frame_count // 2) if next_frame is not None else 0
    picture = scene_frames(cut, sources, source_fps, frame_count, settings)

    def frames() -> Iterator[tuple[Plane, Plane, Plane]]:
        for index in range(frame_count):
            caption = active_caption(cut.segments, index / fps) if settings.captions else None
            frame = picture(index, caption)
            if fade and next_frame is not None and index >= frame_count - fade:
                frame = frame.blend(next_frame, (index - (frame_count - fade) + 1) / (fade + 1))
            yield frame.planes()

    # One encoder thread a segment (several segments encode at once): its bytes are then a
    # function of its frames, so a segment kept from an earlier run equals one encoded now.
    encoding = VideoEncoding(preset=settings.video_preset, crf=settings.video_crf, bit_exact=True)
    write_planes(frames(), (settings.width, settings.height), fps, output, encoding)


@dataclass(frozen=True)
class Assembly:
    """Where each scene sits in the assembled video, and what had to be encoded for it."""

    timeline: list[TimelineEntry]
    segments_encoded: int
    segments_reused: int
    narration_pieces_encoded: int
    """Chunks of the narration's AAC encoded now (the whole track, with music: 1)."""

    @property
    def track_encoded(self) -> bool:
        return self.narration_pieces_encoded > 0

    @property
    def encoded_nothing(self) -> bool:
        return self.segments_encoded == 0 and not self.track_encoded

    def summary(self) -> dict[str, int | bool]:
        return {
            "segments_encoded": self.segments_encoded,
            "segments_reused": self.segments_reused,
            "narration_encoded": self.track_encoded,
            "narration_chunks_encoded": self.narration_pieces_encoded,
        }


def scene_segments(
    cuts: Sequence[SceneCut],
    frame_counts: Sequence[int],
    settings: AssemblySettings,
    store: AssemblyStore,
    work: Path,
) -> tuple[list[Path], int]:
    """Each scene's segment, from the store or rendered now; how many were rendered."""
    keys = [
        segment_key(cut, cuts[index + 1] if index + 1 < len(cuts) else None, frames, settings)
        for index, (cut, frames) in enumerate(zip(cuts, frame_counts, strict=True))
    ]
    found = [store.find("segments", key, ".mp4") for key in keys]
    missing = [index for index, path in enumerate(found) if path is None]

    def render(index: int) -> Path:
        sources, source_fps = scene_sources(cuts[index], settings)
        next_frame = None
        if settings.crossfade_s > 0 and index + 1 < len(cuts):
            following = cuts[index + 1]
            next_frame = first_frame(following, scene_sources(following, settings)[0], settings)
        made = work / f"scene_{index + 1:05d}.mp4"
        render_scene(
            cut=cuts[index],
            sources=sources,
            source_fps=source_fps,
            frame_count=frame_counts[index],
            settings=settings,
            output=made,
            next_frame=next_frame,
        )
        return store.keep("segments", keys[index], ".mp4", made)

    # A few scenes at a time: each overlaps its Python frame work with another's encode,
    # and memory stays bounded by the workers, not by the number of scenes.
    workers = settings.render_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index, path in zip(missing, pool.map(render, missing), strict=True):
            found[index] = path
    return [path for path in found if path is not None], len(missing)


def _music_track(
    narrations: Sequence[SceneNarration],
    settings: AssemblySettings,
    music: Path,
    store: AssemblyStore,
    work: Path,
) -> tuple[Path, int]:
    """The narration over the music, encoded whole (1 piece) unless the store holds it."""
    key = track_key([narration.key for narration in narrations], music, settings)
    if (found := store.find("tracks", key, ".m4a")) is not None:
        return found, 0
    wav, encoded = work / "narration.wav", work / "narration.m4a"
    write_narration_track(narrations, settings, wav)
    encode_track(wav, settings, encoded, music)
    return store.keep("tracks", key, ".m4a", encoded), 1


def encode_narration(
    narrations: Sequence[SceneNarration],
    settings: AssemblySettings,
    music: Path | None,
    store: AssemblyStore,
    work: Path,
) -> tuple[Path, int]:
    """The encoded narration track, and how many pieces of it were encoded now: chunks that
    splice without a seam (`tasks/assembly/aac.py`), or with music under the narration, the
    whole track."""
    if music is not None:
        return _music_track(narrations, settings, music, store, work)
    key = track_key([narration.key for narration in narrations], None, settings)
    if (found := store.find("tracks", key, ".m4a")) is not None:
        return found, 0  # no sample read: each scene's narration key says what it holds
    pcm = b"".join(narration.pcm.read_bytes() for narration in narrations)
    chunks, made = encoded_chunks(pcm, settings, store, work)
    return spliced_track(chunks, store, key), made


def encode_narration_ahead(
    cuts: Sequence[SceneCut], settings: AssemblySettings, music: Path | None, store: AssemblyStore
) -> int:
    """The pieces of the narration of `cuts` levelled, encoded and spliced into `store` before
    the assembly asks for them, which then finds them there when its cuts play the same
    recordings; how many pieces were encoded."""
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".narration-", dir=store.root) as folder:
        narrations = [scene_narration(cut, settings, store) for cut in cuts]
        return encode_narration(narrations, settings, music, store, Path(folder))[1]


def scene_timeline(
    cuts: Sequence[SceneCut], frame_counts: Sequence[int], fps: int
) -> list[TimelineEntry]:
    """Where each scene sits in the video: its span on the frame grid."""
    spans = timeline_frames(frame_counts, fps)
    return [
        TimelineEntry(scene_id=cut.scene_id, start_s=round(start, 3), end_s=round(end, 3))
        for cut, (start, end, _) in zip(cuts, spans, strict=True)
    ]


def planned_timeline(
    cuts: Sequence[SceneCut], settings: AssemblySettings, store: AssemblyStore
) -> list[TimelineEntry]:
    """The timeline `assemble_storyboard` gives `cuts`, known before a frame is encoded (each
    scene's narration levelled into `store`, where the assembly finds it)."""
    narrations = [scene_narration(cut, settings, store) for cut in cuts]
    frame_counts = [narration.frames(settings) for narration in narrations]
    return scene_timeline(cuts, frame_counts, settings.fps)


def assemble_storyboard(
    cuts: Sequence[SceneCut],
    settings: AssemblySettings,
    output: Path,
    music: Path | None = None,
    store: AssemblyStore | None = None,
    narration_ready: Callable[[], object] | None = None,
) -> Assembly:
    """Render `cuts` into `output` (written atomically), encoding only what `store` lacks;
    the narration once `narration_ready()` returns (the pictures start meanwhile)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".assemble-", dir=output.parent) as folder:
        work = Path(folder)
        store = store or AssemblyStore(work / "store")
        narrations = [scene_narration(cut, settings, store) for cut in cuts]
        frame_counts = [narration.frames(settings) for narration in narrations]

        def narrate() -> tuple[Path, int]:
            if narration_ready is not None:
                narration_ready()  # what was begun ahead, for the encoding to find in the store
            return encode_narration(narrations, settings, music, store, work)

        # The narration encodes beside the pictures: neither waits for the other's encoder.
        with ThreadPoolExecutor(max_workers=1) as beside:
            narrated = beside.submit(narrate)
            segments, encoded = scene_segments(cuts, frame_counts, settings, store, work)
            track, pieces = narrated.result()
        joined = work / "storyboard.mp4"
        join_segments(segments, track, joined)
        joined.replace(output)
    timeline = scene_timeline(cuts, frame_counts, settings.fps)
    return Assembly(timeline, encoded, len(cuts) - encoded, pieces)
