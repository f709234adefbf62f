"""The faster-whisper engine (CTranslate2): the default, on CPU or CUDA."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from clients.stopping import raise_if_stopping
from clients.transcription.models import (
    cuda_device_count,
    resolve_model_dir,
    select_compute_type,
    select_device,
)
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

SAMPLING_SEED = 20_251_206
"""Seeds the sampling of Whisper's temperature fallback. CTranslate2 seeds each of its
threads once, when it first samples, from the seed set last: set before every model is
made, a process that reads the same recordings in the same order reads the same words."""


SHARED_WINDOW_S = 60.0
"""Speech up to this long has its language detected in the window its reading encodes."""


class FasterWhisperEngine:
    """faster-whisper behind a lock: one CTranslate2 model, any number of calling threads."""

    name = "faster-whisper"

    def __init__(self, model_dir: Path, model_name: str, device: str, compute_type: str) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        ctranslate2.set_random_seed(SAMPLING_SEED)
        self.model_name = model_name
        self.device = device
        self.compute_type = compute_type
        self._model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=os.cpu_count() or 1,
            local_files_only=True,
        )
        self._lock = threading.Lock()
        self._model.encode = _RememberedEncoder(self._model.encode)  # type: ignore[method-assign]

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
        with self._lock:
            segments, info = self._model.transcribe(
                audio,
                language=language,
                task=task,
                beam_size=beam_size,
                vad_filter=vad_filter,
                condition_on_previous_text=False,
                word_timestamps=word_timestamps,
                temperature=list(bounds.temperatures),
                max_new_tokens=bounds.max_new_tokens,
            )
            raw = tuple(_raw_segment(segment) for segment in _until_stopped(segments))
        return RawTranscription(
            language=info.language,
            language_probability=float(info.language_probability),
            segments=raw,
        )

    def detect_language(self, audio: np.ndarray[Any, np.dtype[np.float32]]) -> tuple[str, float]:
        """The language of the first 30 s of `audio` (speech only), and its probability."""
        return self.language_odds(audio)[0]

    def language_odds(self, audio: np.ndarray[Any, np.dtype[np.float32]]) -> LanguageOdds:
        """Detected on the first window exactly as `transcribe` encodes it (its last feature
        frame left out, as Whisper's decoding loop leaves it), so that a reading of the same
        audio that follows reuses the encoder's pass. That window's features depend on the
        whole audio (Whisper scales them by their loudest): audio longer than
        `SHARED_WINDOW_S` is detected on its first 30 s alone, as faster-whisper does, rather
        than paying its whole length's features twice to share one window."""
        from faster_whisper.audio import pad_or_trim

        if len(audio) > SHARED_WINDOW_S * self._model.feature_extractor.sampling_rate:
            with self._lock:
                _, _, odds = self._model.detect_language(audio)
            return tuple((str(language), float(probability)) for language, probability in odds)
        with self._lock:
            features = self._model.feature_extractor(audio)
            window = pad_or_trim(features[:, : max(1, features.shape[-1] - 1)])
            encoded = self._model.encode(window)
            odds = self._model.model.detect_language(encoded)[0]
        return tuple((str(token[2:-2]), float(probability)) for token, probability in odds)


class _RememberedEncoder:
    """Whisper's encoder, remembering its last few windows: a scene's language detection and
    its reading encode the same first window, and the second gets the first's pass."""

    KEPT = 4

    def __init__(self, encode: Callable[[Any], Any]) -> None:
        self._encode = encode
        self._kept: OrderedDict[bytes, Any] = OrderedDict()

    def __call__(self, features: np.ndarray[Any, Any]) -> Any:
        array = np.ascontiguousarray(features)
        key = hashlib.blake2b(array.data, digest_size=16)
        key.update(repr((array.shape, array.dtype.str)).encode())
        digest = key.digest()
        if digest in self._kept:
            self._kept.move_to_end(digest)
            return self._kept[digest]
        encoded = self._encode(features)
        self._kept[digest] = encoded
        if len(self._kept) > self.KEPT:
            self._kept.popitem(last=False)
        return encoded


def _until_stopped(segments: Iterable[Any]) -> Iterator[Any]:
    """Whisper's segments as it decodes them, ending at the next once the command is told to
    stop (a long recording is many 30-s windows)."""
    for segment in segments:
        raise_if_stopping()
        yield segment


def _raw_segment(segment: Any) -> RawSegment:
    return RawSegment(
        start_s=float(segment.start),
        end_s=float(segment.end),
        text=segment.text.strip(),
        no_speech_prob=float(segment.no_speech_prob),
        avg_logprob=float(segment.avg_logprob),
        words=tuple(
            RawWord(float(word.start), float(word.end), word.word) for word in segment.words or ()
        ),
    )


def device_for(settings: TranscriptionSettings) -> tuple[str, str]:
    """(device, compute type) for these settings on this machine."""
    device = select_device(settings.device, cuda_device_count())
    return device, select_compute_type(settings.compute_type, device)


def create(
    settings: TranscriptionSettings, models_dir: Path, device: str, compute_type: str
) -> FasterWhisperEngine:
    model_dir = resolve_model_dir(settings.model, models_dir)
    return FasterWhisperEngine(model_dir, settings.model, device, compute_type)


KIND = EngineKind(name="faster-whisper", device_for=device_for, create=create)
