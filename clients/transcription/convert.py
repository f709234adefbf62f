"""CTranslate2 Whisper weights to an openai-whisper checkpoint.

A CTranslate2 Whisper `model.bin` (binary version 6) is a flat list of named arrays. Mapped
onto openai-whisper's state dict (the fused q,k,v and k,v projections split; openai-whisper's
key projections have no bias), it gives a checkpoint that `whisper.load_model` reads. The
conversion runs once and is cached beside the joined weights.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from clients.cache import atomic_path
from domain.errors import ConfigurationError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
SUPPORTED_BINARY_VERSION = 6


def _read(stream: BinaryIO, fmt: str) -> Any:
    return struct.unpack(fmt, stream.read(struct.calcsize(fmt)))[0]


def _read_string(stream: BinaryIO) -> str:
    length = _read(stream, "H")
    return str(stream.read(length)[:-1].decode("utf-8"))


def read_ctranslate2_model(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every named array of a CTranslate2 `model.bin` (aliases resolved)."""
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    with path.open("rb") as stream:
        version = _read(stream, "I")
        if version != SUPPORTED_BINARY_VERSION:
            raise ConfigurationError(
                f"{path}: CTranslate2 binary version {version} is not supported"
            )
        spec = _read_string(stream)
        if spec != "WhisperSpec":
            raise ConfigurationError(f"{path}: a {spec}, not a Whisper model")
        _read(stream, "I")  # spec revision
        for _ in range(_read(stream, "I")):
            name = _read_string(stream)
            shape = tuple(_read(stream, "I") for _ in range(_read(stream, "B")))
            dtype = _DTYPES.get(_read(stream, "B"))
            size = _read(stream, "I")
            data = stream.read(size)
            if dtype is None:
                continue
            arrays[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
        for _ in range(_read(stream, "I")):
            alias, target = _read_string(stream), _read_string(stream)
            if target in arrays:
                arrays[alias] = arrays[target]
    return arrays


def _count_layers(arrays: dict[str, Any], stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    return len({match.group(1) for name in arrays if (match := pattern.match(name))})


def _whisper_dims(arrays: dict[str, np.ndarray[Any, Any]]) -> dict[str, int]:
    """openai-whisper's `ModelDimensions`, read off the shapes of the CTranslate2 arrays."""
    state_dims = arrays["encoder/position_encodings/encodings"].shape
    text_dims = arrays["decoder/position_encodings/encodings"].shape
    return {
        "n_mels": int(arrays["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(state_dims[0]),
        "n_audio_state": int(state_dims[1]),
        "n_audio_head": int(arrays["encoder/num_heads"]),
        "n_audio_layer": _count_layers(arrays, "encoder"),
        "n_vocab": int(arrays["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(text_dims[0]),
        "n_text_state": int(text_dims[1]),
        "n_text_head": int(arrays["decoder/num_heads"]),
        "n_text_layer": _count_layers(arrays, "decoder"),
    }


class _StateDict:
    """openai-whisper's state dict, filled from CTranslate2 arrays: each method copies one
    CTranslate2 `source` (a `/`-separated prefix) to one openai-whisper `target` (`.`)."""

    def __init__(self, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
        self.arrays = arrays
        self.state: dict[str, Any] = {}

    def put(self, name: str, value: np.ndarray[Any, Any]) -> None:
        import torch

        self.state[name] = torch.from_numpy(np.ascontiguousarray(value).astype(np.float32))

    def norm(self, target: str, source: str) -> None:
        self.put(f"{target}.weight", self.arrays[f"{source}/gamma"])
        self.put(f"{target}.bias", self.arrays[f"{source}/beta"])

    def linear(self, target: str, source: str) -> None:
        self.put(f"{target}.weight", self.arrays[f"{source}/weight"])
        self.put(f"{target}.bias", self.arrays[f"{source}/bias"])

    def split(self, target_prefix: str, source: str, names: tuple[str, ...]) -> None:
        """A fused projection split into one per name; `key` projections have no bias."""
        weights = np.split(self.arrays[f"{source}/weight"], len(names))
        biases = np.split(self.arrays[f"{source}/bias"], len(names))
        for name, weight, bias in zip(names, weights, biases, strict=True):
            self.put(f"{target_prefix}.{name}.weight", weight)
            if name != "key":
                self.put(f"{target_prefix}.{name}.bias", bias)

    def block(self, target: str, source: str) -> None:
        """What encoder and decoder layers share: self-attention and the MLP."""
        self.norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        self.split(f"{target}.attn", f"{source}/self_attention/linear_0", ("query", "key", "value"))
        self.linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")
        self.norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")
        self.linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        self.linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")


def _map_encoder(state: _StateDict, layers: int) -> None:
    """The audio encoder: convolutions, positional embedding, blocks and final norm."""
    for conv in ("conv1", "conv2"):
        state.linear(f"encoder.{conv}", f"encoder/{conv}")
    state.put("encoder.positional_embedding", state.arrays["encoder/position_encodings/encodings"])
    for index in range(layers):
        state.block(f"encoder.blocks.{index}", f"encoder/layer_{index}")
    state.norm("encoder.ln_post", "encoder/layer_norm")


def _map_decoder(state: _StateDict, layers: int) -> None:
    """The text decoder: embeddings, blocks with cross-attention, and final norm."""
    state.put("decoder.token_embedding.weight", state.arrays["decoder/embeddings/weight"])
    state.put("decoder.positional_embedding", state.arrays["decoder/position_encodings/encodings"])
    for index in range(layers):
        source, target = f"decoder/layer_{index}", f"decoder.blocks.{index}"
        state.block(target, source)
        state.norm(f"{target}.cross_attn_ln", f"{source}/attention/layer_norm")
        state.linear(f"{target}.cross_attn.query", f"{source}/attention/linear_0")
        state.split(f"{target}.cross_attn", f"{source}/attention/linear_1", ("key", "value"))
        state.linear(f"{target}.cross_attn.out", f"{source}/attention/linear_2")
    state.norm("decoder.ln", "decoder/layer_norm")


def openai_checkpoint(arrays: dict[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
    """`{"dims": ..., "model_state_dict": ...}` as openai-whisper's `load_model` expects."""
    dims = _whisper_dims(arrays)
    state = _StateDict(arrays)
    _map_encoder(state, dims["n_audio_layer"])
    _map_decoder(state, dims["n_text_layer"])
    return {"dims": dims, "model_state_dict": state.state}


def converted_checkpoint(ctranslate2_dir: Path, name: str, models_dir: Path) -> Path:
    """The openai-whisper checkpoint for a CTranslate2 model folder, converted once."""
    import torch

    target = models_dir / f"openai-whisper-{name}.pt"
    source = ctranslate2_dir / "model.bin"
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    checkpoint = openai_checkpoint(read_ctranslate2_model(source))
    with atomic_path(target) as temporary:
        torch.save(checkpoint, temporary)
    return target


def openai_cache_checkpoint(name: str) -> Path | None:
    """A checkpoint openai-whisper itself downloaded before, if this machine has one."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
    candidate = root / f"{name}.pt"
    return candidate if candidate.is_file() else None
