"""The narration track: every scene's recording, back to back, as one PCM WAV.

Each recording is brought to one loudness and kept as PCM in the assembly store, so a re-run
decodes only new recordings; a recording that is refused or cannot be decoded becomes
`placeholder_seconds` of silence, so its placeholder card still has a span.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clients.cache import atomic_path
from clients.media.audio import decode_audio
from configs.settings import AssemblySettings
from domain.errors import AudioError
from domain.media import FloatAudio
from tasks.assembly.store import AssemblyStore, narration_key
from tasks.assembly.timeline import SceneCut, frames_for, frames_of_padded, samples_for


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


def levelled_pcm(cut: SceneCut, settings: AssemblySettings) -> bytes:
    """A scene's narration as 16-bit mono PCM: brought to one loudness and to the scene's
    `duration` override when it has one, then padded with silence to whole frames."""
    rate = settings.sample_rate
    samples = narration_samples(cut, settings)
    if settings.loudness_dbfs is not None:
        samples = normalise_loudness(samples, rate, settings.loudness_dbfs)
    if cut.duration_override_s is not None:
        wanted = round(cut.duration_override_s * rate)
        samples = np.pad(samples[:wanted], (0, max(0, wanted - len(samples))))
    frames = frames_for(len(samples), rate, settings.fps)
    samples = np.pad(samples, (0, samples_for(frames, rate, settings.fps) - len(samples)))
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


@dataclass(frozen=True)
class SceneNarration:
    """One scene's levelled narration, kept in the assembly store."""

    key: str
    pcm: Path
    reused: bool

    def frames(self, settings: AssemblySettings) -> int:
        """How many frames the scene lasts (its narration is padded to whole frames)."""
        return frames_of_padded(self.pcm.stat().st_size // 2, settings.sample_rate, settings.fps)


def scene_narration(
    cut: SceneCut, settings: AssemblySettings, store: AssemblyStore
) -> SceneNarration:
    """The scene's levelled PCM from the store, decoded and levelled only when it is new."""
    key = narration_key(cut, settings)
    found = store.find("narration", key, ".pcm")
    if found is not None:
        return SceneNarration(key, found, reused=True)
    path = store.path("narration", key, ".pcm")
    with atomic_path(path) as temporary:
        temporary.write_bytes(levelled_pcm(cut, settings))
    return SceneNarration(key, path, reused=False)


def write_narration_track(
    narrations: Sequence[SceneNarration], settings: AssemblySettings, wav_path: Path
) -> None:
    """Every scene's narration, back to back, as one 16-bit mono WAV."""
    with wave.open(str(wav_path), "wb") as track:
        track.setnchannels(1)
        track.setsampwidth(2)
        track.setframerate(settings.sample_rate)
        for narration in narrations:
            track.writeframes(narration.pcm.read_bytes())
