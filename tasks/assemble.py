"""Assemble: every scene, in order, with its narration, into one H.264/AAC storyboard video.

Each scene is composed with moviepy into its own short video-only segment (its clip fitted to
the narration, captions and label drawn on the clip's few source frames rather than on every
output frame). The segments are joined by stream copy and the narration track, built once as
PCM, is muxed in as AAC. Memory stays flat whatever the number of scenes, and scene
boundaries fall on frame boundaries rounded from the audio timeline, so they never drift.
"""

from __future__ import annotations

import os
import tempfile
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from moviepy import VideoClip
from PIL import Image, ImageDraw
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.media.audio import decode_audio
from clients.media.drawing import (
    cover,
    draw_lines,
    fit_text,
    font,
    line_height,
    placeholder_card,
    text_width,
)
from clients.media.ffmpeg import run_ffmpeg
from configs.settings import AssemblySettings, FitMethod
from domain.errors import AudioError
from domain.media import SVD_HEIGHT, SVD_WIDTH, FloatAudio
from domain.scene import SceneOutcome, SceneStatus, Segment, TimelineEntry

Frame = np.ndarray[Any, np.dtype[np.uint8]]
CAPTION_LINGER_S = 1.0


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


def source_frame_index(
    output_index: int,
    output_frames: int,
    output_fps: float,
    source_frames: int,
    source_fps: float,
    method: FitMethod,
) -> int:
    """Which source frame shows at an output frame when a clip is fitted to a longer span."""
    if source_frames <= 1:
        return 0
    last = source_frames - 1
    if method == "stretch":
        return min(last, int(output_index * source_frames / max(1, output_frames)))
    position = output_index / output_fps * source_fps
    if method == "hold":
        return min(last, int(position))
    natural_s = source_frames / source_fps
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


def timeline_frames(durations: Sequence[float], fps: int) -> list[tuple[float, float, int]]:
    """(start_s, end_s, frame count) per scene, boundaries rounded to frames without drift."""
    spans = []
    start = 0.0
    for duration in durations:
        end = start + duration
        frames = max(1, round(end * fps) - round(start * fps))
        spans.append((start, end, frames))
        start = end
    return spans


def normalise_loudness(
    samples: np.ndarray[Any, np.dtype[np.float32]], rate: int, target_dbfs: float
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Gain to bring the speech (20 ms windows above -50 dBFS) to `target_dbfs` RMS, with the
    peaks kept under full scale; silence is left as it is."""
    window = max(1, rate // 50)
    usable = len(samples) // window * window
    if usable == 0:
        return samples
    rms = np.sqrt(np.mean(samples[:usable].reshape(-1, window) ** 2, axis=1))
    speech = rms[rms > 10 ** (-50 / 20)]
    if speech.size == 0:
        return samples
    level = 20 * np.log10(float(np.sqrt(np.mean(speech**2))))
    gain = 10 ** (float(np.clip(target_dbfs - level, -20.0, 18.0)) / 20)
    louder = samples * gain
    peak = float(np.max(np.abs(louder)))
    if peak > 0.98:
        louder *= 0.98 / peak
    return louder.astype(np.float32)


def narration_samples(cut: SceneCut, settings: AssemblySettings) -> FloatAudio:
    """The scene's recording, or `placeholder_seconds` of silence when there is none to play."""
    silence = np.zeros(round(settings.placeholder_seconds * settings.sample_rate), np.float32)
    if cut.narration is None:
        return silence
    try:
        return decode_audio(cut.narration, settings.sample_rate)
    except (AudioError, OSError):
        return silence


def write_narration_track(
    cuts: Sequence[SceneCut], settings: AssemblySettings, wav_path: Path
) -> list[float]:
    """All narrations, back to back, as one 16-bit mono WAV; returns each scene's seconds.

    A recording that is refused or cannot be decoded becomes `placeholder_seconds` of silence.
    """
    rate = settings.sample_rate
    durations: list[float] = []
    with wave.open(str(wav_path), "wb") as track:
        track.setnchannels(1)
        track.setsampwidth(2)
        track.setframerate(rate)
        for cut in cuts:
            samples = narration_samples(cut, settings)
            if settings.loudness_dbfs is not None:
                samples = normalise_loudness(samples, rate, settings.loudness_dbfs)
            if cut.duration_override_s is not None:
                wanted = round(cut.duration_override_s * rate)
                samples = np.pad(samples[:wanted], (0, max(0, wanted - len(samples))))
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
            track.writeframes(pcm.tobytes())
            durations.append(len(samples) / rate)
    return durations


def read_clip_frames(path: Path, width: int, height: int) -> tuple[list[Image.Image], float]:
    """Every frame of a short clip, at the output size, and the clip's frame rate."""
    frames: list[Image.Image] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 6)
        for frame in container.decode(stream):
            image = frame.to_image()  # type: ignore[no-untyped-call]
            frames.append(cover(image, width, height))
    if not frames:
        raise AudioError(f"{path.name}: the clip has no frames")
    return frames, fps


def _overlay(
    base: Image.Image, label: str | None, caption: str | None, settings: AssemblySettings
) -> Frame:
    width, height = base.size
    if not label and not caption:
        return np.asarray(base.convert("RGB"))
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    margin = max(8, width // 40)
    if label:
        label_font = font(max(12, height // 30), bold=True)
        box = (
            width - margin * 2 - text_width(label, label_font),
            margin,
            width - margin,
            margin + line_height(label_font) + margin // 2,
        )
        draw.rectangle(box, fill=(0, 0, 0, 150))
        draw.text((box[0] + margin / 2, box[1] + margin / 4), label, font=label_font, fill="white")
    if caption:
        caption_font, lines = fit_text(
            caption, width - 4 * margin, 3, (height // 18, height // 22, height // 28)
        )
        block = line_height(caption_font) * len(lines)
        top = height - block - margin * 2
        draw.rectangle((0, top - margin / 2, width, height), fill=(0, 0, 0, 140))
        draw_lines(
            draw,
            lines,
            caption_font,
            2 * margin,
            top,
            (255, 255, 255),
            centre_width=width - 4 * margin,
            stroke=(0, 0, 0),
        )
    return np.asarray(Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB"))


def differs_from_clip(settings: AssemblySettings) -> bool:
    """Whether the storyboard's frame is far from the motion clip's 16:9 (9:16, 1:1)."""
    return abs(settings.width / settings.height - SVD_WIDTH / SVD_HEIGHT) > 0.15


def scene_sources(cut: SceneCut, settings: AssemblySettings) -> tuple[list[Image.Image], float]:
    """The frames a scene is made of (its clip's, or one placeholder card) and their rate.

    For a storyboard far from the clip's 16:9, the scene's own image (generated in the
    storyboard's shape) is used instead of a narrow crop of the clip, with a slow push-in.
    """
    if cut.image_path is not None and differs_from_clip(settings):
        with Image.open(cut.image_path) as image:
            still: Image.Image = image.convert("RGB")
        return [cover(still, settings.width, settings.height)], 0.0
    if cut.clip_path is not None:
        return read_clip_frames(cut.clip_path, settings.width, settings.height)
    card = placeholder_card(
        settings.width, settings.height, cut.placeholder_heading, cut.placeholder_detail, cut.label
    )
    return [card], 1.0


def _ken_burns(still: Image.Image, progress: float) -> Image.Image:
    """A slow push-in over a still, `progress` from 0 to 1."""
    width, height = still.size
    zoom = 1.0 + 0.12 * progress
    crop_w, crop_h = width / zoom, height / zoom
    left, top = (width - crop_w) / 2, (height - crop_h) * 0.4
    return still.resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h)
    )


def render_scene(
    cut: SceneCut,
    sources: Sequence[Image.Image],
    source_fps: float,
    frame_count: int,
    settings: AssemblySettings,
    output: Path,
    next_frame: Frame | None = None,
) -> None:
    """One scene as a video-only H.264 segment of exactly `frame_count` frames.

    With `next_frame` (the next scene's first frame) and `settings.crossfade_s`, the scene's
    last frames dissolve into it, so the cut lands on the scene boundary and never moves the
    narration.
    """
    fps = settings.fps
    label = cut.label if settings.scene_labels and cut.clip_path is not None else None
    fade = min(round(settings.crossfade_s * fps), frame_count // 2) if next_frame is not None else 0
    ken_burns = cut.clip_path is not None and (settings.fit == "kenburns" or source_fps == 0.0)
    still = sources[len(sources) // 2]
    baked: dict[tuple[int, int | None], Frame] = {}

    def frame_at(t: float) -> Frame:
        index = min(frame_count - 1, round(t * fps))
        caption = active_caption(cut.segments, t) if settings.captions else None
        text = cut.segments[caption].text if caption is not None else None
        if ken_burns:
            frame = _overlay(
                _ken_burns(still, index / max(1, frame_count - 1)), label, text, settings
            )
        else:
            method = "pingpong" if settings.fit == "kenburns" else settings.fit
            source = source_frame_index(index, frame_count, fps, len(sources), source_fps, method)
            if (source, caption) not in baked:
                baked[(source, caption)] = _overlay(sources[source], label, text, settings)
            frame = baked[(source, caption)]
        if fade and next_frame is not None and index >= frame_count - fade:
            alpha = (index - (frame_count - fade) + 1) / (fade + 1)
            frame = (frame * (1.0 - alpha) + next_frame * alpha).astype(np.uint8)
        return frame

    clip = VideoClip(frame_function=frame_at, duration=frame_count / fps)
    try:
        clip.write_videofile(
            str(output),
            fps=fps,
            codec="libx264",
            audio=False,
            preset=settings.video_preset,
            pixel_format="yuv420p",
            ffmpeg_params=["-crf", str(settings.video_crf)],
            logger=None,
        )
    finally:
        clip.close()


def first_frame(cut: SceneCut, sources: Sequence[Image.Image], settings: AssemblySettings) -> Frame:
    """What a scene shows at its first instant, for the previous scene to dissolve into."""
    label = cut.label if settings.scene_labels and cut.clip_path is not None else None
    caption = active_caption(cut.segments, 0.0) if settings.captions else None
    text = cut.segments[caption].text if caption is not None else None
    return _overlay(sources[0], label, text, settings)


def join_segments(
    segments: Sequence[Path],
    narration: Path,
    settings: AssemblySettings,
    output: Path,
    music: Path | None = None,
) -> None:
    """Concatenate segments by stream copy and mux the narration as AAC, over background
    music (looped) that ducks under the narration when there is music."""
    listing = output.parent / "segments.txt"
    listing.write_text("".join(f"file '{segment.name}'\n" for segment in segments))
    inputs = ["-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(narration)]
    audio = ["-map", "1:a:0"]
    if music is not None:
        inputs += ["-stream_loop", "-1", "-i", str(music)]
        ducking = (
            f"[2:a]aresample={settings.sample_rate},aformat=channel_layouts=mono,"
            f"volume={settings.music_db}dB[bed];"
            "[bed][1:a]sidechaincompress=threshold=0.02:ratio=12:attack=15:release=350[ducked];"
            "[1:a][ducked]amix=inputs=2:duration=first:normalize=0[mix]"
        )
        audio = ["-filter_complex", ducking, "-map", "[mix]"]
    run_ffmpeg(
        [
            *inputs, "-map", "0:v:0", *audio,
            "-c:v", "copy", "-c:a", "aac", "-b:a", settings.audio_bitrate,
            "-movflags", "+faststart", "-f", "mp4", str(output),
        ]
    )  # fmt: skip


def assemble_storyboard(
    cuts: Sequence[SceneCut],
    settings: AssemblySettings,
    output: Path,
    music: Path | None = None,
) -> list[TimelineEntry]:
    """Render `cuts` into `output` (written atomically); returns where each scene sits."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".assemble-", dir=output.parent) as folder:
        work = Path(folder)
        narration = work / "narration.wav"
        durations = write_narration_track(cuts, settings, narration)
        spans = timeline_frames(durations, settings.fps)
        segments = [work / f"scene_{number:05d}.mp4" for number in range(1, len(cuts) + 1)]

        def render(index: int) -> None:
            sources, source_fps = scene_sources(cuts[index], settings)
            next_frame = None
            if settings.crossfade_s > 0 and index + 1 < len(cuts):
                following = cuts[index + 1]
                next_frame = first_frame(following, scene_sources(following, settings)[0], settings)
            frames = spans[index][2]
            render_scene(
                cuts[index], sources, source_fps, frames, settings, segments[index], next_frame
            )

        # A few scenes at a time: each overlaps its Python frame work with another's encode,
        # and memory stays bounded by the workers, not by the number of scenes.
        workers = settings.render_workers or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(render, range(len(cuts))))
        joined = work / "storyboard.mp4"
        join_segments(segments, narration, settings, joined, music)
        joined.replace(output)
    return [
        TimelineEntry(scene_id=cut.scene_id, start_s=round(start, 3), end_s=round(end, 3))
        for cut, (start, end, _) in zip(cuts, spans, strict=True)
    ]


@task(name="assemble", cache_policy=NO_CACHE)
def assemble(
    cuts: list[SceneCut], settings: AssemblySettings, output: Path, music: Path | None = None
) -> list[TimelineEntry]:
    timeline = assemble_storyboard(cuts, settings, output, music)
    get_run_logger().info("assembled %d scenes into %s", len(cuts), output.name)
    return timeline


_PLACEHOLDERS = {
    SceneStatus.NO_SPEECH: (
        "No speech",
        "Nothing was heard in this recording, so no picture was made.",
    ),
    SceneStatus.FILTERED: ("Filtered", "The image service's content filter refused this scene."),
    SceneStatus.FAILED: ("Failed", "This scene could not be made."),
}


def scene_cut(outcome: SceneOutcome) -> SceneCut:
    """How one scene appears in the video: its clip, or a card that says why it has none."""
    recording = outcome.recording
    segments = outcome.transcript.segments if outcome.transcript else ()
    label = f"Scene {recording.order} · {recording.scene_id}"
    if outcome.status is SceneStatus.OK and outcome.media is not None:
        return SceneCut(
            scene_id=recording.scene_id,
            label=label,
            narration=recording.path,
            segments=segments,
            clip_path=outcome.media.clip_path,
            image_path=outcome.media.image_path,
            duration_override_s=recording.duration_override_s,
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
    )
