"""Incremental assembly: every scene's rendered segment, every recording's levelled narration
and the encoded narration track, kept by a key over everything that shapes them.

A re-run encodes only the scenes whose key changed and joins the rest by stream copy. The keys
cover the scene's picture (clip and image bytes, or its card's text), its caption text and
timing, its label, its frame count, the next scene's first frame when they dissolve into each
other, the visual settings and the encoder; narration keys cover the recording's bytes and the
audio settings. Entries are files written atomically, so a killed run leaves none half-made.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from clients.cache import atomic_path, content_key, copy_atomic
from clients.cache_pruning import touch
from clients.media.ffmpeg import ffmpeg_version
from configs.settings import AssemblySettings
from tasks.assembly.mux import AAC_ENCODER
from tasks.assembly.timeline import SceneCut

ASSEMBLY_FORMAT = 4
STILL_FORMAT = 1
"""Bumped whenever rendering changes what the same inputs look or sound like."""

AUDIO_ONLY_SETTINGS = frozenset(
    {"audio_bitrate", "sample_rate", "loudness_dbfs", "music_db", "placeholder_seconds"}
)
"""Settings that shape the narration and never a frame (a duration reaches a segment's key
through its frame count)."""

NOT_IN_THE_VIDEO = frozenset({"render_workers", "board_page", "exports", "captions_by_word"})
"""Settings that reach a frame only through what a cut carries (its caption chunks), or never."""

_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes, remembered while its size and mtime stay the same."""
    status = path.stat()
    memo = (str(path), status.st_size, status.st_mtime_ns)
    if memo not in _digests:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _digests[memo] = digest.hexdigest()
    return _digests[memo]


def _optional_digest(path: Path | None) -> str:
    return file_digest(path) if path is not None and path.is_file() else ""


def visual_settings(settings: AssemblySettings) -> dict[str, Any]:
    """The settings that shape a scene's frames: every one but the audio and output choices,
    so that a setting added later invalidates segments until it is known not to matter."""
    excluded = AUDIO_ONLY_SETTINGS | NOT_IN_THE_VIDEO
    return {k: v for k, v in settings.model_dump(mode="json").items() if k not in excluded}


def picture_identity(cut: SceneCut, settings: AssemblySettings) -> dict[str, Any]:
    """What a scene shows, frame by frame: its picture, card, label and captions."""
    return {
        "label": "" if cut.picture_labelled else cut.label,
        "clip": _optional_digest(cut.clip_path),
        "image": _optional_digest(cut.image_path),
        "card": [cut.placeholder_heading, cut.placeholder_detail] if cut.clip_path is None else [],
        "captions": [[s.start_s, s.end_s, s.text] for s in cut.segments]
        if settings.captions
        else [],
    }


def segment_key(
    cut: SceneCut, following: SceneCut | None, frame_count: int, settings: AssemblySettings
) -> str:
    """The key of one scene's rendered segment."""
    dissolves_into = following is not None and settings.crossfade_s > 0
    return content_key(
        "segment",
        ASSEMBLY_FORMAT,
        ffmpeg_version(),
        visual_settings(settings),
        frame_count,
        picture_identity(cut, settings),
        picture_identity(following, settings) if dissolves_into and following else None,
    )


def narration_key(cut: SceneCut, settings: AssemblySettings) -> str:
    """The key of one scene's levelled narration samples."""
    recording = cut.narration_sha256 or _optional_digest(cut.narration)
    audio = {name: getattr(settings, name) for name in sorted(AUDIO_ONLY_SETTINGS)}
    return content_key(
        "narration",
        ASSEMBLY_FORMAT,
        recording if cut.narration is not None else None,
        audio,
        cut.duration_override_s,
        settings.fps,
    )


def track_key(narrations: list[str], music: Path | None, settings: AssemblySettings) -> str:
    """The key of the encoded narration track (with the music under it, when there is some)."""
    audio = {name: getattr(settings, name) for name in sorted(AUDIO_ONLY_SETTINGS)}
    return content_key(
        "track",
        ASSEMBLY_FORMAT,
        ffmpeg_version(),
        AAC_ENCODER,
        narrations,
        audio,
        _optional_digest(music),
    )


@dataclass
class AssemblyStore:
    """Segments, narrations and tracks under `root`, one file per key."""

    root: Path

    def path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def find(self, kind: str, key: str, suffix: str) -> Path | None:
        """The stored file of `key`, its use recorded for pruning; None when there is none."""
        path = self.path(kind, key, suffix)
        if not path.is_file():
            return None
        touch(path)
        return path

    def keep(self, kind: str, key: str, suffix: str, made: Path) -> Path:
        """Move the finished file `made` into the store; where it now is."""
        destination = self.path(kind, key, suffix)
        with atomic_path(destination) as temporary:
            shutil.move(made, temporary)
        return destination

    def find_or_make(
        self, kind: str, key: str, suffix: str, make: Callable[[Path], object]
    ) -> Path:
        """The stored file of `key`, made by `make(path)` and kept when there is none."""
        found = self.find(kind, key, suffix)
        if found is not None:
            return found
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".make-", dir=self.root) as work:
            made = Path(work) / f"made{suffix}"
            make(made)
            return self.keep(kind, key, suffix, made)

    def reuse_or_make(
        self, kind: str, key: str, destination: Path, make: Callable[[Path], object]
    ) -> bool:
        """`destination` copied from the store when `key` is there, else made by
        `make(path)`, kept and copied; whether it was reused."""
        reused = self.find(kind, key, destination.suffix) is not None
        found = self.find_or_make(kind, key, destination.suffix, make)
        copy_atomic(found, destination)
        return reused

    def still(self, image: Path, max_px: int) -> Path:
        """`image` as a JPEG at most `max_px` on its longer side, made once per image: what
        the board and the contact sheet draw, so a re-made sheet decodes no full picture."""
        key = content_key("still", STILL_FORMAT, file_digest(image), max_px)

        def make(path: Path) -> None:
            with Image.open(image) as opened:
                small = opened.convert("RGB")
            small.thumbnail((max_px, max_px))
            small.save(path, format="JPEG", quality=88)

        found = self.find("stills", key, ".jpg")
        if found is not None:
            return found
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".still-", dir=self.root) as work:
            made = Path(work) / "still.jpg"
            make(made)
            return self.keep("stills", key, ".jpg", made)
