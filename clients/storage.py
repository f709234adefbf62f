"""Where recordings come from and outputs go: a local folder or an S3 prefix, one interface.

S3 goes through boto3 with the standard credential chain (`AWS_PROFILE`,
`AWS_ACCESS_KEY_ID`, instance roles, ...) and honours `AWS_ENDPOINT_URL`, so MinIO and other
S3-compatible stores work. Throttling (`SlowDown`, 503) is retried by botocore's adaptive
retry mode; a bucket the credentials cannot reach raises StorageError.

Names are always relative, `/`-separated paths under the location's root. A name that would
leave the root (`..`, an absolute path, a backslash) is refused, so no object key can make
the pipeline write outside its target or cache.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from clients.cache import (
    ContentCache,
    atomic_path,
    copy_atomic,
    current_umask,
    write_bytes_atomic,
)
from domain.errors import ConfigurationError, StorageError, is_disk_full
from domain.layout import WRITE_CHECK

if TYPE_CHECKING:
    from configs.settings import Settings

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".csv": "text/csv; charset=utf-8",
    ".srt": "application/x-subrip; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
}


_HINTS = {
    "AccessDenied": " (the AWS credentials in use may not do this)",
    "InvalidAccessKeyId": " (the AWS credentials in use are not known to this endpoint)",
    "SignatureDoesNotMatch": " (the AWS secret key does not match)",
    "NoSuchBucket": " (no such bucket)",
}


MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNK = 8 * 1024 * 1024
"""How `S3Storage.upload` splits a large file, which decides the ETag S3 gives it."""


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int
    etag: str
    modified: float


def safe_name(name: str) -> str:
    """`name` as a relative POSIX path that stays under its root; StorageError otherwise."""
    if "\\" in name or "\x00" in name:
        raise StorageError(f"refusing the object name {name!r}: it contains a backslash or NUL")
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or not path.parts:
        raise StorageError(f"refusing the object name {name!r}: it leaves its folder")
    return path.as_posix()


def content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class Storage(Protocol):
    uri: str

    def list(self, recursive: bool = False) -> list[StoredObject]: ...

    def uploads_in_progress(self) -> tuple[str, ...]:
        """Names, under this location, of uploads begun and not yet finished or abandoned."""
        ...

    def download(self, name: str, destination: Path) -> None: ...

    def read_bytes(self, name: str) -> bytes | None: ...

    def upload(self, source: Path, name: str) -> None: ...

    def write_bytes(self, name: str, data: bytes) -> None: ...

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create `name` only if nothing is there; True when this call created it."""
        ...

    def delete(self, name: str) -> None: ...

    def check_writable(self) -> None:
        """Raise StorageError now, before anything is paid for, if writes here are refused."""
        ...

    def child(self, name: str) -> Storage: ...

    def uri_of(self, name: str) -> str: ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = root.resolve().as_uri()

    def _path(self, name: str) -> Path:
        return self.root / safe_name(name)

    def list(self, recursive: bool = False) -> list[StoredObject]:
        if not self.root.is_dir():
            return []
        entries = self.root.rglob("*") if recursive else self.root.iterdir()
        objects = []
        for entry in entries:
            if not entry.is_file():
                continue
            stat = entry.stat()
            objects.append(
                StoredObject(
                    name=entry.relative_to(self.root).as_posix(),
                    size=stat.st_size,
                    etag=f"{stat.st_mtime_ns}-{stat.st_size}",
                    modified=stat.st_mtime,
                )
            )
        return sorted(objects, key=lambda item: item.name)

    def uploads_in_progress(self) -> tuple[str, ...]:
        return ()  # a file being copied here is already listed, under its own or a temporary name

    def download(self, name: str, destination: Path) -> None:
        copy_atomic(self._path(name), destination)

    def read_bytes(self, name: str) -> bytes | None:
        path = self._path(name)
        return path.read_bytes() if path.is_file() else None

    def upload(self, source: Path, name: str) -> None:
        copy_atomic(source, self._path(name))

    def write_bytes(self, name: str, data: bytes) -> None:
        write_bytes_atomic(self._path(name), data)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Written whole, then linked into place, so no reader ever sees it half-written."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            Path(temporary).chmod(0o666 & ~current_umask())  # mkstemp makes it 0600
            os.link(temporary, path)
        except FileExistsError:
            return False
        finally:
            Path(temporary).unlink()
        return True

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root, prefix=".write-check-"):
                pass
        except OSError as exc:
            if is_disk_full(exc):
                raise
            raise StorageError(f"cannot write to {self.root}: {exc.strerror or exc}") from None

    def child(self, name: str) -> LocalStorage:
        return LocalStorage(self._path(name))

    def uri_of(self, name: str) -> str:
        return self._path(name).resolve().as_uri()


def _s3_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=15)
    return boto3.client(
        "s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None, config=config
    )


class S3Storage:
    """An S3 prefix. `prefix` is "" or ends with "/"."""

    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._made_client = client
        self.uri = f"s3://{bucket}/{prefix}"

    @property
    def _client(self) -> Any:
        """The boto3 client, made on first use: naming an object costs no client."""
        if self._made_client is None:
            self._made_client = _s3_client()
        return self._made_client

    def _key(self, name: str) -> str:
        return self.prefix + safe_name(name)

    def _fail(self, action: str, error: Exception) -> StorageError:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        hint = _HINTS.get(str(code), "")
        return StorageError(f"cannot {action} {self.uri}: {code}{hint}")

    def list(self, recursive: bool = False) -> list[StoredObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        objects = []
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            options = {"Bucket": self.bucket, "Prefix": self.prefix}
            if not recursive:
                options["Delimiter"] = "/"
            for page in paginator.paginate(**options):
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.prefix) :]
                    if not name or name.endswith("/"):
                        continue
                    objects.append(
                        StoredObject(
                            name=name,
                            size=int(item["Size"]),
                            etag=str(item["ETag"]).strip('"'),
                            modified=item["LastModified"].timestamp(),
                        )
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", exc) from None
        return objects

    def uploads_in_progress(self) -> tuple[str, ...]:
        """The keys of multipart uploads under this prefix that were begun and neither
        completed nor aborted: an object still arriving, which `list` does not show yet."""
        from botocore.exceptions import BotoCoreError, ClientError

        names: list[str] = []
        try:
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                names += [item["Key"][len(self.prefix) :] for item in page.get("Uploads", [])]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list the uploads in progress in", exc) from None
        return tuple(names)

    def download(self, name: str, destination: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with atomic_path(destination) as temporary:
                self._client.download_file(self.bucket, self._key(name), str(temporary))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"download {name} from", exc) from None

    def read_bytes(self, name: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            return bytes(answer["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise self._fail(f"read {name} from", exc) from None
        except BotoCoreError as exc:
            raise self._fail(f"read {name} from", exc) from None

    def upload(self, source: Path, name: str) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            max_concurrency=4,
        )
        try:
            self._client.upload_file(
                str(source),
                self.bucket,
                self._key(name),
                ExtraArgs={"ContentType": content_type(name)},
                Config=transfer,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"upload {name} to", exc) from None

    def write_bytes(self, name: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(name), Body=data, ContentType=content_type(name)
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"write {name} to", exc) from None

    def put_if_absent(self, name: str, data: bytes) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(name), Body=data, IfNoneMatch="*"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}:
                return False
            raise self._fail(f"write {name} to", exc) from None
        except BotoCoreError as exc:
            raise self._fail(f"write {name} to", exc) from None
        return True

    def check_writable(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(WRITE_CHECK), Body=b"")
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("write to", exc) from None

    def delete(self, name: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(name))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(f"delete {name} from", exc) from None

    def child(self, name: str) -> S3Storage:
        return S3Storage(self.bucket, f"{self._key(name)}/", self._client)

    def uri_of(self, name: str) -> str:
        return f"s3://{self.bucket}/{quote(self._key(name), safe='/')}"


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def open_storage(uri: str) -> LocalStorage | S3Storage:
    """A location from `s3://bucket/prefix/` or a local path."""
    if not is_s3(uri):
        return LocalStorage(Path(uri).expanduser())
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigurationError(f"{uri}: no bucket named")
    parts = [part for part in prefix.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ConfigurationError(f"{uri}: a prefix may not contain '..'")
    return S3Storage(bucket, "".join(f"{part}/" for part in parts))


@dataclass(frozen=True)
class CacheLocation:
    """Where content-cached results live: a folder on this machine, and optionally a shared
    S3 prefix that every worker and machine of a fleet reads and writes."""

    local: Path
    shared: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> CacheLocation:
        """The cache a run under `settings` uses."""
        return cls(settings.cache_dir, settings.shared_cache)

    def open(self) -> ContentCache:
        return ContentCache(self.local, open_storage(self.shared) if self.shared else None)
