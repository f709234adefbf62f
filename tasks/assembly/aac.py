"""The narration as AAC, encoded in chunks of about half a minute that splice without a seam,
so that a re-recorded scene re-encodes the chunks its samples fall in, not the whole track.

AAC frames overlap: each packet's window spans two 1024-sample blocks, and a block sounds
right only when both windows over it were encoded from the same samples. So every chunk is
encoded with `PRE_BLOCKS` of the narration before it and `POST_BLOCKS` after it, and the track
takes from each chunk only the packets that lie `SPLICE_DELAY` packets past its own first
block, where the encoder has seen the samples on both sides; the packets at a splice are then
the ones a single encode of the whole narration would have made, within coding noise (a test
compares the two at every splice). The spliced track has exactly the whole encode's number of
packets, so it neither drifts nor clicks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from clients.cache import content_key
from clients.media.ffmpeg import ffmpeg_version, run_ffmpeg
from clients.stopping import raise_if_stopping
from configs.settings import AssemblySettings
from tasks.assembly.mux import AAC_ENCODER
from tasks.assembly.store import ASSEMBLY_FORMAT, AssemblyStore

BLOCK = 1024
"""Samples per AAC frame."""
CHUNK_BLOCKS = 1400
"""About 30 s at 48 kHz: a change re-encodes one or two chunks."""
PRE_BLOCKS = 2
POST_BLOCKS = 6
SPLICE_DELAY = 5
"""Where a chunk's packets take over from the previous chunk's, in packets past its first
block: enough for the encoder to have warmed up on the samples before it."""


@dataclass(frozen=True)
class Chunk:
    """One chunk of the narration: its samples `[start, end)`, and those it is encoded from."""

    start: int
    end: int
    encoded_from: int
    encoded_to: int
    first: bool
    last: bool

    def kept(self, packets: int) -> slice:
        """Which of the chunk's encoded packets go into the track."""
        lead = (self.start - self.encoded_from) // BLOCK
        low = 0 if self.first else SPLICE_DELAY + lead
        high = packets if self.last else SPLICE_DELAY + lead + (self.end - self.start) // BLOCK
        return slice(low, high)


def plan_chunks(samples: int, chunk_blocks: int = CHUNK_BLOCKS) -> list[Chunk]:
    """The chunks of a narration of `samples` samples; every boundary lies on a block."""
    size = chunk_blocks * BLOCK
    starts = list(range(0, samples, size)) or [0]
    chunks = []
    for index, start in enumerate(starts):
        first, last = index == 0, index == len(starts) - 1
        end = min(samples, start + size)
        chunks.append(
            Chunk(
                start=start,
                end=end,
                encoded_from=max(0, start - PRE_BLOCKS * BLOCK),
                encoded_to=samples if last else min(samples, end + POST_BLOCKS * BLOCK),
                first=first,
                last=last,
            )
        )
    return chunks


def encode_chunk(pcm: bytes, settings: AssemblySettings, output: Path) -> None:
    """16-bit mono PCM as AAC in an M4A."""
    raw = output.with_suffix(".pcm")
    raw.write_bytes(pcm)
    run_ffmpeg(
        [
            "-f",
            "s16le",
            "-ar",
            str(settings.sample_rate),
            "-ac",
            "1",
            "-i",
            str(raw),
            *AAC_ENCODER,
            "-b:a",
            settings.audio_bitrate,
            "-f",
            "mp4",
            str(output),
        ]
    )
    raw.unlink()


def chunk_key(pcm: bytes, chunk: Chunk, settings: AssemblySettings) -> str:
    return content_key(
        "aac chunk",
        ASSEMBLY_FORMAT,
        ffmpeg_version(),
        AAC_ENCODER,
        pcm,
        chunk.first,
        chunk.last,
        settings.sample_rate,
        settings.audio_bitrate,
    )


def encoded_chunks(
    pcm: bytes,
    settings: AssemblySettings,
    store: AssemblyStore,
    work: Path,
    chunk_blocks: int = CHUNK_BLOCKS,
) -> tuple[list[tuple[Chunk, Path]], int]:
    """Every chunk of the narration `pcm` as an M4A in the store, the missing ones encoded a
    few at a time; how many were encoded now."""
    planned = []
    for chunk in plan_chunks(len(pcm) // 2, chunk_blocks):
        piece = pcm[2 * chunk.encoded_from : 2 * chunk.encoded_to]
        key = chunk_key(piece, chunk, settings)
        planned.append((chunk, key, piece, store.find("aac", key, ".m4a")))

    def encode(chunk: Chunk, key: str, piece: bytes) -> Path:
        raise_if_stopping()  # a stopped run waits for the chunk in flight, not for the rest
        encoded = work / f"chunk_{chunk.start}.m4a"
        encode_chunk(piece, settings, encoded)
        return store.keep("aac", key, ".m4a", encoded)

    missing = [(chunk, key, piece) for chunk, key, piece, found in planned if found is None]
    workers = settings.render_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        encoded = list(pool.map(lambda item: encode(*item), missing))
    made = {key: path for (_, key, _), path in zip(missing, encoded, strict=True)}
    chunks = [(chunk, found or made[key]) for chunk, key, _, found in planned]
    return chunks, len(missing)


def spliced_track(chunks: Sequence[tuple[Chunk, Path]], store: AssemblyStore, key: str) -> Path:
    """The chunks (each stored under its key) spliced into one track, kept in `store` under
    `key` (`track_key` of the scenes' narrations): spliced once, by whichever comes first of
    the pass ahead and the assembly, and found by every later run of the same narration."""
    return store.find_or_make("tracks", key, ".m4a", lambda made: splice_chunks(chunks, made))


def splice_chunks(chunks: Sequence[tuple[Chunk, Path]], output: Path) -> None:
    """One AAC track in an M4A from the chunks' kept packets, timed end to end."""
    with av.open(str(chunks[0][1])) as template, av.open(str(output), "w", format="mp4") as out:
        track = out.add_stream_from_template(template.streams.audio[0])
        samples = Fraction(1, template.streams.audio[0].codec_context.sample_rate)
        position = -BLOCK  # the encoder's priming frame, cut by the track's edit list
        for chunk, path in chunks:
            with av.open(str(path)) as source:
                stream = source.streams.audio[0]
                packets = [p for p in source.demux(stream) if p.size]
            for packet in packets[chunk.kept(len(packets))]:
                packet.stream = track
                packet.time_base = samples
                packet.pts = packet.dts = position
                packet.duration = BLOCK
                out.mux(packet)
                position += BLOCK
