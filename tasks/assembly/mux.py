"""Muxing: the narration track encoded once as AAC over background music that ducks under the
narration, then the scenes' segments and that track joined by stream copy.

Joining re-encodes nothing, so it costs little whatever the number of scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clients.media.ffmpeg import run_ffmpeg
from configs.settings import AssemblySettings

AAC_ENCODER = ("-c:a", "aac", "-aac_coder", "fast")
"""ffmpeg's AAC encoder with its `fast` coder, which its documentation calls "better and much
faster at higher bitrates" than the default two-loop search (worse only under 64 kbps): half
the time of a narration chunk, which a retake re-encodes from the changed scene on."""


def _ducked_music(settings: AssemblySettings) -> str:
    """The filter graph that lays the looped music (input 1) under the narration (input 0),
    ducking it whenever someone speaks."""
    return (
        f"[1:a]aresample={settings.sample_rate},aformat=channel_layouts=mono,"
        f"volume={settings.music_db}dB[bed];"
        "[bed][0:a]sidechaincompress=threshold=0.02:ratio=12:attack=15:release=350[ducked];"
        "[0:a][ducked]amix=inputs=2:duration=first:normalize=0[mix]"
    )


def encode_track(
    narration: Path, settings: AssemblySettings, output: Path, music: Path | None = None
) -> None:
    """The narration WAV as AAC in an M4A, over background music (looped) that ducks under
    the narration when there is music."""
    inputs = ["-i", str(narration)]
    audio = ["-map", "0:a:0"]
    if music is not None:
        inputs += ["-stream_loop", "-1", "-i", str(music)]
        audio = ["-filter_complex", _ducked_music(settings), "-map", "[mix]"]
    run_ffmpeg(
        [*inputs, *audio, *AAC_ENCODER, "-b:a", settings.audio_bitrate, "-f", "mp4", str(output)]
    )


def concat_entry(path: Path) -> str:
    """One line of an ffmpeg concat listing, quoted for any path."""
    quoted = str(path.resolve()).replace("'", "'\\''")
    return f"file '{quoted}'\n"


def join_segments(segments: Sequence[Path], track: Path, output: Path) -> None:
    """Concatenate the segments and lay the encoded narration track beside them, all by
    stream copy."""
    listing = output.parent / "segments.txt"
    listing.write_text("".join(concat_entry(segment) for segment in segments))
    run_ffmpeg(
        [
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-i",
            str(track),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(output),
        ]
    )
