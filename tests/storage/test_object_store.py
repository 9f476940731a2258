"""Behaviour of both ObjectStore backends, run against each through the same tests.

The MinIO backend runs against moto's S3 server on 127.0.0.1 with a versioned
bucket, through the real minio client. The property that matters most: after
`delete`/`delete_prefix`, `count_versions` is 0 — no old version and no delete
marker of a child's photo survives.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from minio import Minio

from services.core.config import Settings
from services.core.errors import ObjectNotFound, StorageUnavailable
from services.core.stores import build_store
from storage import ObjectStore
from storage.filesystem import TMP_PREFIX, FilesystemStore
from storage.minio_store import UNKNOWN_LENGTH_PART_SIZE, MinioStore, make_client
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, drop_bucket, new_bucket

MIB = 1024 * 1024


@pytest.fixture(params=["filesystem", "minio"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "filesystem":
        return FilesystemStore(tmp_path / "objects")
    # Resolved lazily so filesystem-only runs do not start the S3 server.
    minio_store: MinioStore = request.getfixturevalue("minio_store")
    return minio_store


class StreamingReader(io.RawIOBase):
    """A non-seekable stream that records how it is read."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self.largest_read = 0
        self.unbounded_reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            self.unbounded_reads += 1
            size = len(self._data) - self._pos
        self.largest_read = max(self.largest_read, size)
        chunk = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(chunk)
        return chunk

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


class FailingReader(io.RawIOBase):
    """Yields some bytes, then fails like a dropped client upload."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if not self._sent:
            self._sent = True
            return self._data
        raise ConnectionResetError("client went away")


# --- round trips -------------------------------------------------------------


def test_bytes_round_trip(store: ObjectStore) -> None:
    store.put("originals/org1/m1", b"\x00photo\xff", content_type="image/jpeg")
    assert store.get("originals/org1/m1") == b"\x00photo\xff"
    assert store.exists("originals/org1/m1")
    assert store.count_versions("originals/org1/m1") == 1


def test_empty_object_round_trip(store: ObjectStore) -> None:
    store.put("k/empty", b"")
    assert store.get("k/empty") == b""
    assert store.exists("k/empty")


@pytest.mark.parametrize("with_length", [True, False])
def test_file_object_round_trip(store: ObjectStore, with_length: bool) -> None:
    data = os.urandom(300_000)
    store.put("k/file", io.BytesIO(data), length=len(data) if with_length else None)
    assert store.get("k/file") == data


def test_large_stream_is_streamed_in_bounded_reads(store: ObjectStore) -> None:
    # Over one 10 MiB part, so the MinIO backend has to use multipart upload.
    data = os.urandom(UNKNOWN_LENGTH_PART_SIZE + 12_345)
    reader = StreamingReader(data)
    store.put("videos/org1/v1", reader)  # type: ignore[arg-type]
    assert reader.unbounded_reads == 0
    assert reader.largest_read <= UNKNOWN_LENGTH_PART_SIZE + 1
    assert store.get("videos/org1/v1") == data
    assert store.count_versions("videos/org1/v1") == 1
    if isinstance(store, MinioStore):
        etag = store.client.stat_object(store.bucket, "videos/org1/v1").etag
        assert etag is not None and etag.endswith("-2"), etag  # two-part upload


def test_put_with_short_stream_fails_and_keeps_old_object(store: ObjectStore) -> None:
    store.put("k/x", b"old")
    with pytest.raises(ValueError, match="short"):
        store.put("k/x", io.BytesIO(b"tiny"), length=100)
    assert store.get("k/x") == b"old"
    assert store.count_versions("k/x") == 1


def test_put_bytes_with_wrong_length_is_rejected(store: ObjectStore) -> None:
    with pytest.raises(ValueError):
        store.put("k/x", b"abc", length=4)
    assert not store.exists("k/x")


@pytest.mark.parametrize("length", [None, 1000])
def test_put_that_fails_mid_stream_keeps_old_object(
    store: ObjectStore, length: int | None
) -> None:
    store.put("k/x", b"old")
    with pytest.raises(ConnectionResetError):
        store.put("k/x", FailingReader(b"partial new"), length=length)  # type: ignore[arg-type]
    assert store.get("k/x") == b"old"
    assert store.count_versions("k/x") == 1


# --- reads of absent objects -------------------------------------------------


def test_get_missing_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("nope/never")
    assert not store.exists("nope/never")


def test_prefix_is_not_an_object(store: ObjectStore) -> None:
    store.put("a/b/c", b"1")
    with pytest.raises(ObjectNotFound):
        store.get("a/b")
    assert not store.exists("a/b")


def test_download_writes_file_atomically_and_privately(
    store: ObjectStore, tmp_path: Path
) -> None:
    data = os.urandom(2 * MIB + 7)
    store.put("videos/v", data)
    target = tmp_path / "out" / "v.mp4"
    target.parent.mkdir()
    store.download("videos/v", target)
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(target.parent)) == ["v.mp4"]


def test_download_missing_raises_and_leaves_no_file(store: ObjectStore, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ObjectNotFound):
        store.download("nope", out / "v.mp4")
    assert list(out.iterdir()) == []


# --- deletion ----------------------------------------------------------------


def test_overwrite_then_delete_leaves_zero_versions(store: ObjectStore) -> None:
    key = "originals/org1/m1"
    store.put(key, b"version one")
    store.put(key, b"version two")
    assert store.get(key) == b"version two"
    expected = 1 if isinstance(store, FilesystemStore) else 2
    assert store.count_versions(key) == expected

    store.delete(key)

    assert store.count_versions(key) == 0
    assert not store.exists(key)
    with pytest.raises(ObjectNotFound):
        store.get(key)


def test_delete_removes_delete_markers_left_by_plain_deletes(minio_store: MinioStore) -> None:
    # Someone (or some tool) deleted without version ids: on a versioned
    # bucket that only hides the data behind a delete marker.
    key = "originals/org1/m1"
    minio_store.put(key, b"one")
    minio_store.put(key, b"two")
    minio_store.client.remove_object(minio_store.bucket, key)
    assert not minio_store.exists(key)
    assert minio_store.count_versions(key) == 3  # two versions + one delete marker

    minio_store.delete(key)

    assert minio_store.count_versions(key) == 0
    remaining = list(
        minio_store.client.list_objects(minio_store.bucket, recursive=True, include_version=True)
    )
    assert remaining == []


def test_delete_touches_only_the_exact_key(store: ObjectStore) -> None:
    for key in ("a/b", "a/bc", "a/b.jpg", "a/ba/x"):
        store.put(key, key.encode())
    store.put("a/b", b"again")

    store.delete("a/b")

    assert store.count_versions("a/b") == 0
    assert list(store.list_keys("a")) == ["a/b.jpg", "a/ba/x", "a/bc"]
    for key in ("a/bc", "a/b.jpg", "a/ba/x"):
        assert store.get(key) == key.encode()


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.delete("never/existed")
    store.put("k/x", b"1")
    store.delete("k/x")
    store.delete("k/x")
    assert store.count_versions("k/x") == 0


@pytest.mark.parametrize("prefix", ["a/b", "a/b/"])
def test_delete_prefix_removes_every_version_and_spares_siblings(
    store: ObjectStore, prefix: str
) -> None:
    doomed = ["a/b/c", "a/b/d/e", "a/b/d/f"]
    spared = ["a/bc", "a/bcd/x", "a/c", "b/b/c"]
    for key in doomed + spared:
        store.put(key, key.encode())
    store.put("a/b/c", b"overwritten")  # a second version on a versioned bucket
    versions_before = store.count_versions("a/b")

    removed = store.delete_prefix(prefix)

    assert removed == versions_before
    assert removed == (3 if isinstance(store, FilesystemStore) else 4)
    assert store.count_versions("a/b") == 0
    assert list(store.list_keys("a/b")) == []
    assert list(store.list_keys("")) == sorted(spared)
    for key in spared:
        assert store.get(key) == key.encode()
        assert store.count_versions(key) == 1


def test_delete_prefix_of_a_single_object_spares_longer_names(store: ObjectStore) -> None:
    store.put("originals/org1", b"1")
    store.put("originals/org10", b"10")
    assert store.delete_prefix("originals/org1") == 1
    assert store.count_versions("originals/org1") == 0
    assert store.get("originals/org10") == b"10"


def test_delete_prefix_with_nothing_there_returns_zero(store: ObjectStore) -> None:
    assert store.delete_prefix("nothing/here") == 0


def test_delete_prefix_refuses_the_whole_store(store: ObjectStore) -> None:
    store.put("k", b"1")
    with pytest.raises(ValueError):
        store.delete_prefix("")
    with pytest.raises(ValueError):
        store.delete_prefix("/")
    assert store.get("k") == b"1"


# --- listing -----------------------------------------------------------------


def test_list_keys_is_sorted_current_and_segment_scoped(store: ObjectStore) -> None:
    for key in ("p/z", "p/a", "p/m/1", "p/m/0", "pq/a", "p2"):
        store.put(key, b".")
    store.put("p/gone", b".")
    store.delete("p/gone")

    assert list(store.list_keys("p")) == ["p/a", "p/m/0", "p/m/1", "p/z"]
    assert list(store.list_keys("p/")) == ["p/a", "p/m/0", "p/m/1", "p/z"]
    assert list(store.list_keys("p/m")) == ["p/m/0", "p/m/1"]
    assert list(store.list_keys("p/a")) == ["p/a"]
    assert list(store.list_keys("")) == ["p/a", "p/m/0", "p/m/1", "p/z", "p2", "pq/a"]
    assert list(store.list_keys("missing")) == []


def test_count_versions_of_whole_store(store: ObjectStore) -> None:
    store.put("x/1", b"1")
    store.put("y/2", b"2")
    store.put("y/2", b"2'")
    assert store.count_versions("") == (2 if isinstance(store, FilesystemStore) else 3)


# --- key validation ----------------------------------------------------------

UNSAFE_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "a/../../outside",
    "a/..",
    "a/./b",
    "a//b",
    "a/b/",
    "a\\b",
    "..\\outside",
    "a\x00b",
    f"a/{TMP_PREFIX}x",
]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_rejected(store: ObjectStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(ValueError):
        store.delete(key)
    with pytest.raises(ValueError):
        store.exists(key)
    assert store.count_versions("") == 0


@pytest.mark.parametrize("prefix", ["../x", "/abs", "a//b", "a\\b"])
def test_unsafe_prefixes_are_rejected(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        store.delete_prefix(prefix)
    with pytest.raises(ValueError):
        store.list_keys(prefix)
    with pytest.raises(ValueError):
        store.count_versions(prefix)


def test_keys_with_dots_inside_a_name_are_fine(store: ObjectStore) -> None:
    store.put("a/photo..jpg", b"1")
    store.put("a/.hidden", b"2")
    assert list(store.list_keys("a")) == ["a/.hidden", "a/photo..jpg"]


# --- filesystem specifics ----------------------------------------------------


def test_filesystem_modes_and_pruning(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    fs = FilesystemStore(root)
    fs.put("originals/org1/m1", b"1")
    fs.put("originals/org1/m2", b"2")
    path = root / "originals" / "org1" / "m1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (root, root / "originals", root / "originals" / "org1"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700

    fs.delete("originals/org1/m1")
    assert (root / "originals" / "org1").is_dir()
    fs.delete("originals/org1/m2")
    assert not (root / "originals").exists()
    assert root.is_dir()
    assert list(root.iterdir()) == []


def test_filesystem_delete_prefix_prunes_parents(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    fs = FilesystemStore(root)
    fs.put("derived/org1/m1/thumb", b"1")
    fs.put("derived/org1/m1/blurred", b"2")
    assert fs.delete_prefix("derived/org1") == 2
    assert list(root.iterdir()) == []


def test_filesystem_leftover_temp_file_counts_and_is_deleted(tmp_path: Path) -> None:
    # What a crash between creating the temp file and renaming it leaves behind.
    root = tmp_path / "objects"
    fs = FilesystemStore(root)
    fs.put("originals/org1/m1", b"committed")
    leftover = root / "originals" / "org1" / f"{TMP_PREFIX}m1.abc123"
    leftover.write_bytes(b"half a photo")

    assert list(fs.list_keys("originals")) == ["originals/org1/m1"]
    assert fs.count_versions("originals/org1/m1") == 2
    assert fs.count_versions("originals") == 2

    fs.delete("originals/org1/m1")
    assert not leftover.exists()
    assert fs.count_versions("originals") == 0
    assert list(root.iterdir()) == []


def test_filesystem_leftover_temp_file_removed_by_delete_prefix(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    fs = FilesystemStore(root)
    (root / "originals").mkdir(mode=0o700)
    (root / "originals" / f"{TMP_PREFIX}org1.xyz").write_bytes(b"partial")
    fs.put("originals/org1/m1", b"1")
    assert fs.count_versions("originals/org1") == 2
    assert fs.delete_prefix("originals/org1") == 2
    assert fs.count_versions("originals") == 0


def test_filesystem_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    fs = FilesystemStore(root)
    with pytest.raises(ConnectionResetError):
        fs.put("originals/org1/m1", FailingReader(b"partial"))  # type: ignore[arg-type]
    assert fs.count_versions("") == 0


def test_filesystem_rejects_key_that_collides_with_a_prefix(tmp_path: Path) -> None:
    fs = FilesystemStore(tmp_path / "objects")
    fs.put("a/b/c", b"1")
    with pytest.raises(ValueError):
        fs.put("a/b", b"2")
    fs.put("x", b"1")
    with pytest.raises(ValueError):
        fs.put("x/y", b"2")
    assert fs.get("a/b/c") == b"1"


# --- MinIO specifics ---------------------------------------------------------


@pytest.fixture
def unversioned_store(minio_client: Minio) -> Iterator[MinioStore]:
    store = new_bucket(minio_client, versioned=False)
    yield store
    drop_bucket(minio_client, store.bucket)


def test_unversioned_bucket_overwrite_and_delete(unversioned_store: MinioStore) -> None:
    s = unversioned_store
    s.put("a/b", b"1")
    s.put("a/b", b"2")
    s.put("a/bc", b"3")
    s.put("a/b/c", b"4")
    assert s.count_versions("a/b") == 2  # "a/b" (one version kept) and "a/b/c"
    s.delete("a/b")
    assert s.count_versions("a/b") == 1
    assert s.delete_prefix("a/b") == 1
    assert s.count_versions("a/b") == 0
    assert s.get("a/bc") == b"3"


def test_build_store_filesystem(tmp_path: Path) -> None:
    # Explicit values throughout: tests/conftest.py sets CONSENTGATE_* for production.
    settings = Settings(
        environment="embedded", storage_backend="filesystem", data_dir=tmp_path / "data"
    )
    store = build_store(settings)
    assert isinstance(store, FilesystemStore)
    store.put("k", b"1")
    assert (tmp_path / "data" / "objects" / "k").read_bytes() == b"1"


def test_build_store_minio_creates_bucket_when_embedded(s3_endpoint: str) -> None:
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    settings = Settings(
        environment="embedded",
        storage_backend="minio",
        minio_endpoint=s3_endpoint,
        minio_access_key=ACCESS_KEY,
        minio_secret_key=SECRET_KEY,
        minio_bucket=bucket,
        minio_region=REGION,
    )
    store = build_store(settings)
    assert isinstance(store, MinioStore)
    store.put("k", b"1")
    assert store.get("k") == b"1"
    assert store.client.bucket_exists(bucket)
    drop_bucket(store.client, bucket)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_minio_raises_storage_unavailable_quickly(tmp_path: Path) -> None:
    settings = Settings(
        environment="embedded",
        storage_backend="minio",
        minio_endpoint=f"127.0.0.1:{_closed_port()}",
        minio_access_key=ACCESS_KEY,
        minio_secret_key=SECRET_KEY,
        minio_bucket="consentgate",
        minio_region=REGION,
    )
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        build_store(settings)  # embedded: checks for the bucket at once
    store = MinioStore.from_settings(settings)
    operations: list[Callable[[], object]] = [
        lambda: store.get("k"),
        lambda: store.put("k", b"1"),
        lambda: store.put("k", io.BytesIO(b"1")),
        lambda: store.exists("k"),
        lambda: store.delete("k"),
        lambda: store.delete_prefix("k"),
        lambda: list(store.list_keys("k")),
        lambda: store.count_versions("k"),
        lambda: store.download("k", tmp_path / "out"),
    ]
    assert time.monotonic() - started < 2
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            operation()
        # Default client: 2 retries, 0.4 s backoff in all; minio-py's own
        # default retries 5 times with a 5-minute timeout.
        assert time.monotonic() - started < 2
    assert not (tmp_path / "out").exists()


def test_hung_minio_times_out_as_storage_unavailable() -> None:
    # Accepts TCP connections (the kernel completes the handshake) but never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        endpoint = f"127.0.0.1:{listener.getsockname()[1]}"
        client = make_client(
            endpoint, ACCESS_KEY, SECRET_KEY, region=REGION,
            connect_timeout=1.0, read_timeout=0.5, retries=1,
        )
        store = MinioStore(client, "bucket")
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            store.get("k")
        assert time.monotonic() - started < 5


def test_filesystem_creates_missing_ancestors_privately(tmp_path: Path) -> None:
    FilesystemStore(tmp_path / "data" / "objects")
    for directory in (tmp_path / "data", tmp_path / "data" / "objects"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
