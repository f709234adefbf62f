"""Recordings (and pictures) sent to the studio: read within the size limit, decoded and
checked before anything is written (pictures: `studio/characters.py`).

A recording arrives either as the raw request body (the page's microphone, a Blob) or as the
`file` field of a multipart form (a plain `<input type=file>`). Its name never comes from the
client: the server names it `<scene_id>.<ext>`, the extension from the container PyAV
detects in its bytes.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import av
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from clients.media.audio import check_audio, decode_audio
from domain.errors import AudioError
from studio.errors import StudioError

FILE_FIELD = "file"
FORM_LIMIT = 256 * 1024
"""The most a form without a recording may hold."""
FORM_SLACK = 64 * 1024
"""What a multipart form may add to a recording's bytes (boundaries, headers, fields)."""
EXTENSIONS = {
    "ogg": "ogg",
    "matroska,webm": "webm",
    "wav": "wav",
    "mp3": "mp3",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "flac": "flac",
}
"""PyAV's container names, and the extension the pipeline reads each as."""
CHECK_RATE = 16_000
_ERRNO = re.compile(r"\[Errno -?\d+\] ")


@dataclass(frozen=True)
class Received:
    """A request's recording bytes and, for a form, its other fields."""

    data: bytes
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recording:
    """A recording that decodes whole: its bytes, extension and length."""

    data: bytes
    extension: str
    seconds: float


def too_large(limit: int, what: str = "recording") -> StudioError:
    return StudioError(413, f"the {what} is larger than {limit / 1024 / 1024:g} MB")


async def read_limited(request: Request, limit: int, what: str = "recording") -> bytes:
    """The request body, refused (413) as soon as it is larger than `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit, what)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit, what)
        chunks.append(chunk)
    return b"".join(chunks)


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


async def receive_upload(request: Request, limit: int, what: str = "recording") -> Received:
    """The file in `request` (a recording, a picture): its raw body, or the `file` field of a
    multipart form."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        data = await read_limited(request, limit, what)
        return Received(data)
    body = await read_limited(request, limit + FORM_SLACK, what)
    parser = MultiPartParser(request.headers, _once(body), max_files=1, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise StudioError(400, f"the form could not be read: {exc.message}") from None
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    upload = form.get(FILE_FIELD)
    if not isinstance(upload, UploadFile):
        raise StudioError(400, f"the form has no file in its '{FILE_FIELD}' field")
    data = await upload.read()
    await form.close()
    if len(data) > limit:
        raise too_large(limit, what)
    return Received(data, fields)


MAX_FORM_FIELDS = 10_000
"""An approval form sends three fields per scene: room for a storyboard of thousands."""


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a small form (urlencoded, or multipart as `fetch` sends FormData)."""
    body = await read_limited(request, FORM_LIMIT)
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            form = await MultiPartParser(
                request.headers, _once(body), max_files=0, max_fields=MAX_FORM_FIELDS
            ).parse()
        elif content_type.startswith("application/x-www-form-urlencoded"):
            form = await FormParser(request.headers, _once(body)).parse()
        else:
            raise StudioError(415, "send the form as a form (urlencoded or multipart)")
    except MultiPartException as exc:
        raise StudioError(400, f"the form could not be read: {exc.message}") from None
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


def _container(path: Path) -> str | None:
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            return str(container.format.name)
    except (av.error.FFmpegError, ValueError, OSError):
        return None


def _plain(error: Exception, path: Path) -> str:
    """The error's words without the temporary file's name or an errno."""
    return _ERRNO.sub("", str(error).replace(f": '{path}'", "").replace(str(path), "the file"))


def check_recording(data: bytes, max_seconds: float | None) -> Recording:
    """`data` as a recording the pipeline can read; StudioError 400 with the reason otherwise
    (empty, not audio, a container the pipeline does not read, undecodable, truncated, too
    long)."""
    if not data:
        raise StudioError(400, "the recording is empty (0 bytes)")
    with tempfile.TemporaryDirectory(prefix="storyboard-studio-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            check_audio(path)
        except AudioError as exc:
            raise StudioError(400, f"not an audio recording: {_plain(exc, path)}") from None
        container = _container(path)
        extension = EXTENSIONS.get(container or "")
        if extension is None:
            readable = ", ".join(sorted(set(EXTENSIONS.values())))
            raise StudioError(
                400,
                f"a {container or 'unknown'} file is not a recording the pipeline reads "
                f"({readable})",
            )
        named = path.rename(path.with_suffix(f".{extension}"))
        try:
            samples = decode_audio(named, CHECK_RATE, max_seconds)
        except AudioError as exc:
            raise StudioError(400, f"the recording cannot be used: {_plain(exc, named)}") from None
    return Recording(data, extension, len(samples) / CHECK_RATE)
