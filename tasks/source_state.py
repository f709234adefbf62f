"""A storyboard folder's inputs at one moment: the fingerprint a watcher renders by, which
files say a copy into the folder is not finished, and the look again, just before a run
publishes, that tells a folder that changed while it was rendered from a settled one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.cache import content_key
from clients.storage import StoredObject, open_storage
from domain.errors import SourceChangedError
from domain.layout import NAMED_FILE_SUFFIXES, STORYBOARD_FILE
from tasks.ingest import AUDIO_EXTENSIONS, is_recording

PARTIAL_UPLOAD_SUFFIXES = (
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".filepart",
    ".tmp",
    "~",
)
"""What Firefox, Chrome, Safari, WinSCP and editors name a file still being written."""


def is_partial_upload(name: str) -> bool:
    """Whether `name` is a file that browsers, copy tools and transfer clients write while an
    upload or copy is still under way."""
    lower = name.lower()
    rsync_temporary = lower.startswith(".") and any(f"{ext}." in lower for ext in AUDIO_EXTENSIONS)
    return lower.endswith(PARTIAL_UPLOAD_SUFFIXES) or rsync_temporary


def is_input(name: str) -> bool:
    """Whether a file of a storyboard folder (its own name, no folder) is one of the inputs a
    render reads: a recording, the storyboard file, or a file of the kinds it names (a
    character's reference picture, LoRA weights)."""
    if is_partial_upload(name):
        return False
    named = name.lower().endswith(NAMED_FILE_SUFFIXES)
    return is_recording(name) or name == STORYBOARD_FILE or named


def inputs_fingerprint(items: Iterable[StoredObject]) -> str:
    """One key for a folder's inputs as listed: each one's name, ETag and size."""
    inputs = sorted(
        (PurePosixPath(item.name).name, item.etag, item.size)
        for item in items
        if is_input(PurePosixPath(item.name).name)
    )
    return content_key(inputs)


@task(name="check-source-settled", cache_policy=NO_CACHE)
def check_source_settled(source: str, fingerprint: str) -> None:
    """SourceChangedError when the folder's inputs, listed again now, are not those the render
    started from (`fingerprint`), or an upload into it is still under way."""
    storage = open_storage(source)
    uploading = storage.uploads_in_progress()
    arriving = [name for name in uploading if "/" not in name and is_input(name)]
    if arriving or inputs_fingerprint(storage.list()) != fingerprint:
        what = f"{arriving[0]} is still being uploaded" if arriving else "its files changed"
        raise SourceChangedError(
            f"{source}: {what} while it was rendered; not published as if settled"
        )
