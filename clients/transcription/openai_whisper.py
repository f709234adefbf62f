"""The openai-whisper engine (torch), from the same bundled CTranslate2 weights.

The weights are converted once to an openai-whisper checkpoint (`convert.py`). A named
checkpoint in openai-whisper's own cache (`~/.cache/whisper/base.pt`) is used as it is when a
user has one.

openai-whisper and torch live in the optional `openai` extra (`pip install -e .[openai]`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from clients.transcription.convert import converted_checkpoint, openai_cache_checkpoint
from clients.transcription.models import is_model_path, resolve_model_dir, select_device
from clients.transcription.types import (
    WHISPER_DEFAULTS,
    DecodeBounds,
    EngineKind,
    LanguageOdds,
    RawSegment,
    RawTranscription,
    RawWord,
)
from configs.settings import TranscriptionSettings
from domain.errors import ConfigurationError


def torch_cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


class OpenAIWhisperEngine:
    """openai-whisper behind a lock, with Silero VAD (from faster-whisper) for silence."""

    name = "openai-whisper"

    def __init__(self, checkpoint: Path, model_name: str, device: str) -> None:
        try:
            import torch
            import whisper
        except ImportError:
            raise ConfigurationError(
                "the openai-whisper engine needs the `openai` extra: "
                "pip install -e '.[openai]' (make test installs it)"
            ) from None
        torch.set_num_threads(os.cpu_count() or 1)
        self.model_name = model_name
        self.device = device
        self.compute_type = "float16" if device == "cuda" else "float32"
        self._model = whisper.load_model(str(checkpoint), device=device)
        self._lock = threading.Lock()

    def detect_language(self, audio: np.ndarray[Any, np.dtype[np.float32]]) -> tuple[str, float]:
        """The language of the first 30 s of `audio`, and its probability."""
        return self.language_odds(audio)[0]

    def language_odds(self, audio: np.ndarray[Any, np.dtype[np.float32]]) -> LanguageOdds:
        with self._lock:
            return self._language_odds(audio)

    def _language_odds(self, audio: np.ndarray[Any, np.dtype[np.float32]]) -> LanguageOdds:
        import whisper

        window = whisper.pad_or_trim(audio)
        mel = whisper.log_mel_spectrogram(window, self._model.dims.n_mels).to(self.device)
        _, probabilities = self._model.detect_language(mel)
        ranked = sorted(probabilities.items(), key=lambda item: -item[1])
        return tuple((str(language), float(probability)) for language, probability in ranked)

    def transcribe(
        self,
        audio: np.ndarray[Any, np.dtype[np.float32]],
        *,
        language: str | None,
        task: str,
        beam_size: int,
        vad_filter: bool,
        word_timestamps: bool = False,
        bounds: DecodeBounds = WHISPER_DEFAULTS,
    ) -> RawTranscription:

        if vad_filter:
            from faster_whisper.vad import VadOptions, get_speech_timestamps

            if not get_speech_timestamps(audio, VadOptions()):
                return RawTranscription(
                    language=language or "en", language_probability=0.0, segments=()
                )
        with self._lock:
            probability = 1.0
            if language is None:
                language, probability = self._language_odds(audio)[0]
            result = self._model.transcribe(
                audio,
                language=language,
                task=task,
                beam_size=beam_size,
                best_of=beam_size,
                fp16=self.device == "cuda",
                condition_on_previous_text=False,
                word_timestamps=word_timestamps,
                verbose=None,
                temperature=bounds.temperatures,
                sample_len=bounds.max_new_tokens,
            )
        segments = tuple(
            RawSegment(
                start_s=float(segment["start"]),
                end_s=float(segment["end"]),
                text=str(segment["text"]).strip(),
                no_speech_prob=float(segment["no_speech_prob"]),
                avg_logprob=float(segment["avg_logprob"]),
                words=tuple(
                    RawWord(float(word["start"]), float(word["end"]), str(word["word"]))
                    for word in segment.get("words", ())
                ),
            )
            for segment in result["segments"]
        )
        return RawTranscription(
            language=language, language_probability=probability, segments=segments
        )


def device_for(settings: TranscriptionSettings) -> tuple[str, str]:
    """(device, compute type) for these settings on this machine."""
    device = select_device(settings.device, 1 if torch_cuda_available() else 0)
    return device, "float16" if device == "cuda" else "float32"


def create(
    settings: TranscriptionSettings, models_dir: Path, device: str, compute_type: str
) -> OpenAIWhisperEngine:
    checkpoint = None if is_model_path(settings.model) else openai_cache_checkpoint(settings.model)
    if checkpoint is None:
        model_dir = resolve_model_dir(settings.model, models_dir)
        checkpoint = converted_checkpoint(model_dir, Path(settings.model).name, models_dir)
    return OpenAIWhisperEngine(checkpoint, settings.model, device)


KIND = EngineKind(name="openai-whisper", device_for=device_for, create=create)
