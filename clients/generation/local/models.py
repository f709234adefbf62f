"""Finding, naming and loading diffusers pipelines for `--backend local`.

A model is a pipeline folder (saved by diffusers' `save_pretrained`, or a fine-tuned one) or a
hub id already in the user's Hugging Face cache: nothing is ever downloaded. Its identity, for
the content cache, is the hub id and the snapshot's revision, or for a folder a digest of its
configuration and weight files. torch and diffusers live in the `local` extra and are imported
only when a pipeline is loaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from domain.errors import ConfigurationError, exception_reason

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_HASHED_SUFFIXES = (".json", ".txt", ".model", ".safetensors", ".bin", ".ckpt", ".pt", ".pth")
EXTRA_HINT = "pip install -e '.[local]'"


@dataclass(frozen=True)
class ModelLocation:
    """Where a model's files are, and what names it in the cache key."""

    folder: Path
    hub_id: str | None = None

    @cached_property
    def identity(self) -> str:
        """The hub id and the snapshot's revision, or a digest of the folder's files (read only
        when a cache key needs it: finding a model does not hash its weights)."""
        if self.hub_id is not None:
            return f"hub:{self.hub_id}@{self.folder.name}"
        return f"folder:{folder_digest(self.folder)}"


def hub_cache_dir() -> Path:
    configured = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if configured:
        return Path(configured).expanduser()
    home = os.environ.get("HF_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface"
    return base / "hub"


def locate_model(name: str, revision: str | None, setting: str) -> ModelLocation:
    """The folder for `name` (a folder, or a hub id in the cache); ConfigurationError saying
    where it looked otherwise."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ConfigurationError(
                f"{setting}: {path} is not a diffusers pipeline folder (no model_index.json)"
            )
        return ModelLocation(path.resolve())
    if not _HUB_ID.match(name):
        raise ConfigurationError(f"{setting}: no pipeline folder at {path}")
    snapshot = _cached_snapshot(name, revision)
    if snapshot is None:
        raise ConfigurationError(
            f"{setting}: no folder {path} here, and '{name}' is not in the Hugging Face cache "
            f"({hub_cache_dir()}); download it once (huggingface-cli download {name}) or name "
            "a folder"
        )
    return ModelLocation(snapshot, hub_id=name)


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        folder = snapshot_download(
            repo_id, revision=revision, local_files_only=True, cache_dir=hub_cache_dir()
        )
    except Exception:  # any way of not being in the cache: not found, no revision, offline
        return None
    return Path(folder)


def folder_digest(folder: Path) -> str:
    """sha256 over the folder's configuration and weight files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in _HASHED_SUFFIXES:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(file_digest(path).encode())
    return digest.hexdigest()


_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def file_digest(path: Path) -> str:
    """A file's sha256, read once per process while its size and modification time stay."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        if key in _digests:
            return _digests[key]
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    with _digests_lock:
        _digests[key] = digest.hexdigest()
    return _digests[key]


def weights_digest(path: Path, what: str = "subject weights") -> str:
    """A LoRA's identity: its file's sha256, or its folder's digest."""
    if path.is_dir():
        return folder_digest(path)
    if not path.is_file():
        raise ConfigurationError(f"{what} {path}: no such file or folder")
    return file_digest(path)


def torch_modules() -> tuple[Any, Any]:
    """(torch, diffusers), or a ConfigurationError naming the extra that installs them."""
    try:
        import diffusers
        import torch
    except ImportError:
        raise ConfigurationError(
            f"--backend local needs torch and diffusers: {EXTRA_HINT}"
        ) from None
    quiet_model_libraries(diffusers)
    return torch, diffusers


def quiet_model_libraries(diffusers: Any) -> None:
    """diffusers' and transformers' own progress bars and warnings off the console: what
    matters of them (a prompt cut to the text encoder's length) the run says itself."""
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    try:
        import transformers
    except ImportError:
        return
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def choose_device(requested: str) -> str:
    torch, _ = torch_modules()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError("generation.local.device is cuda, but no CUDA device is visible")
    return requested


def choose_dtype(requested: str, device: str) -> Any:
    """float32 on the CPU; on a GPU bfloat16 where it has it (SDXL's VAE overflows in
    float16), else float16."""
    torch, _ = torch_modules()
    if requested != "auto":
        return getattr(torch, requested)
    if device != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def load_pipeline(location: ModelLocation, dtype: Any, loader_name: str | None = None) -> Any:
    """The pipeline in `location`, loaded as `loader_name` (a diffusers pipeline class), or
    as its model_index.json names it (SDXL, SD, SD3, FLUX)."""
    _, diffusers = torch_modules()
    loader = getattr(diffusers, loader_name or "DiffusionPipeline")
    try:
        return loader.from_pretrained(location.folder, dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        reason = exception_reason(exc)
        raise ConfigurationError(f"{location.folder}: cannot be loaded ({reason})") from None


def pipeline_class(folder: Path) -> str:
    """The pipeline class a folder's `model_index.json` names ("" when it names none)."""
    import json

    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(index.get("_class_name", "")) if isinstance(index, dict) else ""
