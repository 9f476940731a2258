"""Object store on MinIO (or any S3 API), for the production deployment.

Deletion removes every version and delete marker of the affected keys, so on
a versioned bucket nothing of a deleted photo survives as a noncurrent
version. Deletions list again afterwards and repeat until the listing is
empty, so a version written concurrently is not left behind silently.

Not covered here: parts of multipart uploads that were never completed or
aborted (a client crash mid-upload) are invisible to object listings. The
bucket needs a lifecycle rule with AbortIncompleteMultipartUpload to expire
them.

Errors: S3 "NoSuchKey" becomes `ObjectNotFound`; connection failures,
timeouts, 5xx and throttling become `StorageUnavailable`, which callers treat
as retryable. Keys and prefixes follow the same rules as the filesystem
backend (see `storage.filesystem.check_key`).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.versioningconfig import VersioningConfig
from urllib3.util import Retry, Timeout

from services.core.errors import BucketMissing, ObjectNotFound, StorageUnavailable
from storage.filesystem import (
    CHUNK_SIZE,
    atomic_writer,
    check_key,
    key_in_prefix,
    normalise_prefix,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from services.core.config import Settings

# Part size for streams of unknown length, in bytes. minio-py buffers up to
# num_parallel_uploads (3) parts in memory at a time.
UNKNOWN_LENGTH_PART_SIZE = 10 * 1024 * 1024

# Seconds. Short enough that a request fails in seconds, not minutes, when
# MinIO is down; the read timeout bounds silence between bytes, not the
# duration of a whole transfer.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_RETRIES = 2

# Rounds of list-then-delete before a deletion is reported as incomplete.
_DELETE_ROUNDS = 5

_TRANSIENT_S3_CODES = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "XMinioServerNotInitialized",
    }
)


def make_http_client(
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    cert_check: bool = True,
) -> urllib3.PoolManager:
    """An HTTP pool for `Minio` that gives up quickly (minio-py's default: 5 min, 5 retries)."""
    return urllib3.PoolManager(
        timeout=Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=10,
        cert_reqs="CERT_REQUIRED" if cert_check else "CERT_NONE",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
        ),
    )


def make_client(
    endpoint: str,
    access_key: str | None,
    secret_key: str | None,
    *,
    secure: bool = False,
    region: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> Minio:
    return Minio(
        endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
        region=region,
        http_client=make_http_client(
            connect_timeout=connect_timeout, read_timeout=read_timeout, retries=retries
        ),
    )


# Messages of the errors raised here reach API bodies and `media.error`, so they are
# plain words only: the endpoint, bucket and object keys the client library puts in
# its exceptions go to the log, never into the message or details.
UNREACHABLE = "the file store cannot be reached just now; try again in a minute"
FAILED = "the file store answered with an error; try again in a minute"
MISSING = "the stored file is missing"


@contextmanager
def _translate_errors(key: str | None = None) -> Iterator[None]:
    try:
        yield
    except S3Error as exc:
        if key is not None and exc.code in ("NoSuchKey", "NoSuchVersion"):
            log.warning("object store: no object %r (%s)", key, exc.code)
            raise ObjectNotFound(MISSING) from exc
        if exc.code == "NoSuchBucket":
            # Production buckets are provisioned by the deployment; without one every
            # upload would fail, so say so plainly (503, readiness fails) instead of a 500.
            raise BucketMissing("the storage bucket does not exist; an administrator "
                                "must create it") from exc
        if exc.code in _TRANSIENT_S3_CODES:
            log.warning("object store error %s on %r: %s", exc.code, key, exc)
            raise StorageUnavailable(FAILED, s3_code=exc.code) from exc
        raise
    except (ServerError, InvalidResponseError) as exc:
        log.warning("object store failed on %r: %s", key, exc)
        raise StorageUnavailable(FAILED) from exc
    except urllib3.exceptions.HTTPError as exc:
        # Connection refused, timeouts, dropped connections, retries exhausted.
        log.warning("object store unreachable on %r: %s", key, exc)
        raise StorageUnavailable(UNREACHABLE) from exc


class _CountingReader:
    """Wraps a stream to tell whether minio-py's "not enough data" came from the stream."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0
        self.eof = False

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.count += len(chunk)
        if not chunk and size != 0:
            self.eof = True
        return chunk


class MinioStore:
    def __init__(self, client: Minio, bucket: str, *, create_bucket: bool = False) -> None:
        self.client = client
        self.bucket = bucket
        if create_bucket:
            self._ensure_bucket()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        create_bucket: bool = False,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        retries: int | None = None,
    ) -> MinioStore:
        """Timeouts and retries default to CONSENTGATE_MINIO_CONNECT_TIMEOUT_S,
        _READ_TIMEOUT_S and _RETRIES: a hung store fails a request within about
        (retries + 1) x (connect + read timeout), not minutes."""
        secret = settings.minio_secret_key
        client = make_client(
            settings.minio_endpoint,
            settings.minio_access_key,
            secret.get_secret_value() if secret is not None else None,
            secure=settings.minio_secure,
            region=settings.minio_region,
            connect_timeout=(settings.minio_connect_timeout_s if connect_timeout is None
                             else connect_timeout),
            read_timeout=settings.minio_read_timeout_s if read_timeout is None else read_timeout,
            retries=settings.minio_retries if retries is None else retries,
        )
        return cls(client, settings.minio_bucket, create_bucket=create_bucket)

    def __repr__(self) -> str:
        return f"MinioStore(bucket={self.bucket!r})"

    def _ensure_bucket(self) -> None:
        with _translate_errors():
            if self.client.bucket_exists(self.bucket):
                return
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:
                # Another process created it between the check and here.
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def enable_versioning(self) -> None:
        with _translate_errors():
            self.client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))

    def put(self, key: str, data: bytes | BinaryIO, *, length: int | None = None,
            content_type: str = "application/octet-stream") -> None:
        check_key(key)
        if isinstance(data, bytes | bytearray | memoryview):
            if length is not None and length != len(data):
                raise ValueError(f"length={length} but {len(data)} bytes given")
            stream: Any = io.BytesIO(data)
            length = len(data)
        else:
            stream = _CountingReader(data)
        part_size = 0 if length is not None else UNKNOWN_LENGTH_PART_SIZE
        with _translate_errors():
            try:
                self.client.put_object(
                    self.bucket,
                    key,
                    stream,
                    length if length is not None else -1,
                    content_type=content_type,
                    part_size=part_size,
                )
            except OSError as exc:
                # minio-py raises IOError when the stream holds fewer than
                # `length` bytes; any other OSError is the caller's stream failing.
                if (length is not None and isinstance(stream, _CountingReader)
                        and stream.eof and stream.count < length):
                    raise ValueError(
                        f"stream ended {length - stream.count} bytes short of length={length}"
                    ) from exc
                raise

    def _open(self, key: str) -> urllib3.BaseHTTPResponse:
        check_key(key)
        with _translate_errors(key):
            return self.client.get_object(self.bucket, key)

    def get(self, key: str) -> bytes:
        response = self._open(key)
        try:
            with _translate_errors(key):
                return response.read()
        finally:
            response.close()
            response.release_conn()

    def download(self, key: str, path: Path) -> None:
        response = self._open(key)
        try:
            with _translate_errors(key), atomic_writer(Path(path)) as fh:
                for chunk in response.stream(CHUNK_SIZE):
                    fh.write(chunk)
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        check_key(key)
        try:
            with _translate_errors(key):
                self.client.stat_object(self.bucket, key)
        except ObjectNotFound:
            return False
        return True

    def _list(
        self, prefix: str, *, versions: bool, subtree: bool = True
    ) -> Iterator[tuple[str, str | None]]:
        """(key, version id) of objects, or of all versions and delete markers, in key order.

        S3 prefixes are raw strings, so "a/b" is listed as the exact key plus
        everything under "a/b/". The exact-key listing is non-recursive, which
        folds a sibling's subtree ("a/bc/...") into one common-prefix entry.
        subtree=False lists only the exact key.
        """
        def entries(list_prefix: str, recursive: bool) -> Iterator[tuple[str, str | None]]:
            for obj in self.client.list_objects(
                self.bucket, prefix=list_prefix, recursive=recursive, include_version=versions
            ):
                name = obj.object_name
                if name is not None and not obj.is_dir and key_in_prefix(name, prefix):
                    yield name, obj.version_id

        with _translate_errors():
            if prefix == "":
                yield from entries("", recursive=True)
                return
            yield from ((n, v) for n, v in entries(prefix, recursive=False) if n == prefix)
            if subtree:
                yield from entries(prefix + "/", recursive=True)

    def _remove(self, victims: Iterable[DeleteObject]) -> None:
        with _translate_errors():
            errors = list(self.client.remove_objects(self.bucket, victims))
        if errors:
            for e in errors:
                log.warning("object store: could not delete %r version %s: %s %s",
                            e.name, e.version_id, e.code, e.message)
            raise StorageUnavailable(
                f"the file store could not delete {len(errors)} stored version(s); "
                "try again in a minute", failures=len(errors)
            )

    def _delete_all(self, prefix: str, *, subtree: bool) -> int:
        removed = 0
        for _ in range(_DELETE_ROUNDS):
            # The deletion is confirmed by a listing that comes back empty.
            victims = [
                DeleteObject(name, version_id)
                for name, version_id in self._list(prefix, versions=True, subtree=subtree)
            ]
            if not victims:
                return removed
            self._remove(victims)
            removed += len(victims)
        log.warning("object store: versions of %r kept reappearing during deletion", prefix)
        raise StorageUnavailable(
            "stored versions kept reappearing while they were being deleted; try again later"
        )

    def delete(self, key: str) -> None:
        self._delete_all(check_key(key), subtree=False)

    def delete_prefix(self, prefix: str) -> int:
        prefix = normalise_prefix(prefix)
        if prefix == "":
            raise ValueError("refusing to delete_prefix('') on the whole bucket")
        return self._delete_all(prefix, subtree=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        prefix = normalise_prefix(prefix)
        return (name for name, _ in self._list(prefix, versions=False))

    def count_versions(self, prefix: str) -> int:
        return sum(1 for _ in self._list(normalise_prefix(prefix), versions=True))

    def list_version_keys(self, prefix: str) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._list(normalise_prefix(prefix), versions=True):
            if name not in seen:
                seen.add(name)
                yield name
