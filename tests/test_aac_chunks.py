"""The narration's AAC in chunks: spliced, it is the whole encode within coding noise, and a
change re-encodes only the chunk it falls in."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clients.media.audio import decode_audio
from configs.settings import AssemblySettings
from tasks.assembly.aac import BLOCK, encode_chunk, encoded_chunks, splice_chunks
from tasks.assembly.store import AssemblyStore
from tests.helpers import DEMO_DIR

SETTINGS = AssemblySettings()
CHUNK_BLOCKS = 100
"""About 2.1 s at 48 kHz, so the demo's speech crosses several splices."""


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    parts = [
        decode_audio(DEMO_DIR / name, SETTINGS.sample_rate)
        for name in ("dawn.ogg", "storm.m4a", "river.mp3", "elephants.ogg")
    ]
    return (np.concatenate(parts) * 0.8).astype(np.float32)


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _decoded(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = sum(1 for packet in container.demux(stream) if packet.size)
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
    return np.concatenate(frames), packets


def test_spliced_chunks_sound_like_one_encode_at_every_splice(
    speech: np.ndarray, tmp_path: Path
) -> None:
    pcm = _pcm(speech)
    original = np.frombuffer(pcm, "<i2").astype(np.float32) / 32767
    chunks, made = encoded_chunks(
        pcm, SETTINGS, AssemblyStore(tmp_path / "store"), tmp_path, CHUNK_BLOCKS
    )
    assert made == len(chunks) >= 4
    splice_chunks(chunks, tmp_path / "spliced.m4a")
    encode_chunk(pcm, SETTINGS, tmp_path / "whole.m4a")

    spliced, spliced_packets = _decoded(tmp_path / "spliced.m4a")
    whole, whole_packets = _decoded(tmp_path / "whole.m4a")
    assert spliced_packets == whole_packets, "the same length: no drift against the video"
    assert len(spliced) == len(whole)
    length = len(original)
    ratios = []
    for chunk, _ in chunks[1:]:
        around = slice(chunk.start - 4 * BLOCK, chunk.start + 4 * BLOCK)
        seam = np.abs(spliced[:length][around] - original[around]).max()
        reference = np.abs(whole[:length][around] - original[around]).max()
        assert seam <= 2.5 * reference + 0.002, f"a click at sample {chunk.start}"
        if reference > 0.002:  # speech, not silence
            ratios.append(seam / reference)
    # Two encodes of the same speech differ by coding noise alone: no splice stands out.
    assert len(ratios) >= 3 and float(np.median(ratios)) < 1.15, ratios

    def snr(decoded: np.ndarray) -> float:
        error = decoded[:length] - original
        return float(10 * np.log10(np.sum(original**2) / np.sum(error**2)))

    assert snr(spliced) > snr(whole) - 3.0


def test_a_change_re_encodes_only_its_chunk(speech: np.ndarray, tmp_path: Path) -> None:
    store = AssemblyStore(tmp_path / "store")
    chunks, _ = encoded_chunks(_pcm(speech), SETTINGS, store, tmp_path, CHUNK_BLOCKS)
    changed = speech.copy()
    middle = chunks[2][0]
    changed[middle.start + 20 * BLOCK : middle.start + 60 * BLOCK] *= 0.5
    again, made = encoded_chunks(_pcm(changed), SETTINGS, store, tmp_path, CHUNK_BLOCKS)
    assert made == 1
    assert [path for _, path in again] != [path for _, path in chunks]
    assert sum(a != b for (_, a), (_, b) in zip(again, chunks, strict=True)) == 1
