"""Muxing: the scenes' segments joined by stream copy, with the narration track as AAC over
background music that ducks under the narration.

Nothing is re-encoded but the audio, so joining costs little whatever the number of scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clients.media.ffmpeg import run_ffmpeg
from configs.settings import AssemblySettings


def _ducked_music(settings: AssemblySettings) -> str:
    """The filter graph that lays the looped music (input 2) under the narration (input 1),
    ducking it whenever someone speaks."""
    return (
        f"[2:a]aresample={settings.sample_rate},aformat=channel_layouts=mono,"
        f"volume={settings.music_db}dB[bed];"
        "[bed][1:a]sidechaincompress=threshold=0.02:ratio=12:attack=15:release=350[ducked];"
        "[1:a][ducked]amix=inputs=2:duration=first:normalize=0[mix]"
    )


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
        audio = ["-filter_complex", _ducked_music(settings), "-map", "[mix]"]
    run_ffmpeg(
        [
            *inputs, "-map", "0:v:0", *audio,
            "-c:v", "copy", "-c:a", "aac", "-b:a", settings.audio_bitrate,
            "-movflags", "+faststart", "-f", "mp4", str(output),
        ]
    )  # fmt: skip
