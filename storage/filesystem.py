"""Object store on the local filesystem, for the embedded deployment.

Each key is one regular file under ``root``. Writes go to a temporary file in
the destination directory, are fsynced and then renamed over the key, so a
crash leaves either the old object or the new one, never half of one.

A crash can still leave the temporary file behind, holding part of a photo.
Temporary files are therefore named after their key (``.cg-tmp-<name>.<rand>``)
and are counted by `count_versions` and removed by `delete`/`delete_prefix`,
so that "zero versions remain" also covers interrupted uploads.

Key and prefix rules are shared with the MinIO backend (see `check_key` and
`normalise_prefix`), so data can move between backends unchanged.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from services.core.errors import ObjectNotFound

log = logging.getLogger(__name__)

TMP_PREFIX = ".cg-tmp-"
# Read/write granularity when streaming, in bytes.
CHUNK_SIZE = 1024 * 1024
_DIR_MODE = 0o700


def check_key(key: str) -> str:
    """Return key if it is a safe relative '/'-separated path, else raise ValueError."""
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if "\x00" in key:
        raise ValueError(f"object key contains NUL: {key!r}")
    if "\\" in key:
        raise ValueError(f"object key contains a backslash: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"object key is absolute: {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"object key has an empty, '.' or '..' segment: {key!r}")
        if segment.startswith(TMP_PREFIX):
            raise ValueError(f"object key segment may not start with {TMP_PREFIX!r}: {key!r}")
    return key


def normalise_prefix(prefix: str) -> str:
    """Validate a prefix and drop one trailing '/'; '' means the whole store.

    Prefixes match whole path segments: "a/b" covers "a/b" and "a/b/...",
    never "a/bc". Matching raw string prefixes would let deleting
    ``originals/org1`` also delete ``originals/org10``.
    """
    if prefix == "":
        return ""
    return check_key(prefix[:-1] if prefix.endswith("/") else prefix)


def key_in_prefix(key: str, prefix: str) -> bool:
    """Whether key lies under a prefix already passed through `normalise_prefix`."""
    return prefix == "" or key == prefix or key.startswith(prefix + "/")


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(
    path: Path, *, make_parents: Callable[[], None] | None = None
) -> Iterator[BinaryIO]:
    """Yield a file that replaces `path` (mode 0600) only if the block succeeds.

    `make_parents` creates the directory; it is called again if a concurrent
    delete pruned the directory before the temporary file was created in it.
    """
    for attempt in range(3):
        if make_parents is not None:
            make_parents()
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.")
            break
        except FileNotFoundError:
            if make_parents is None or attempt == 2:
                raise
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def copy_stream(src: BinaryIO, dst: BinaryIO, length: int | None) -> None:
    """Copy src to EOF, or exactly `length` bytes; ValueError if src ends early."""
    if length is None:
        shutil.copyfileobj(src, dst, CHUNK_SIZE)
        return
    remaining = length
    while remaining > 0:
        chunk = src.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise ValueError(f"stream ended {remaining} bytes short of length={length}")
        dst.write(chunk)
        remaining -= len(chunk)


class FilesystemStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        # Missing ancestors too are created private: data_dir also holds the
        # database and keys. Existing directories are left as they are.
        for directory in [*reversed(self.root.parents), self.root]:
            if not directory.is_dir():
                with suppress(FileExistsError):
                    os.mkdir(directory, _DIR_MODE)
        if not self.root.is_dir():
            raise NotADirectoryError(f"object store root is not a directory: {self.root}")

    def __repr__(self) -> str:
        return f"FilesystemStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _make_parents(self, path: Path) -> None:
        # Path.mkdir(parents=True) ignores `mode` for intermediate directories.
        current = self.root
        for part in path.relative_to(self.root).parts[:-1]:
            current = current / part
            with suppress(FileExistsError):
                os.mkdir(current, _DIR_MODE)

    def _prune(self, directory: Path) -> None:
        """Remove now-empty directories from `directory` up to (not including) root."""
        while directory != self.root and self.root in directory.parents:
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = directory.parent

    def _temp_files(self, path: Path) -> list[Path]:
        """Leftover temporary files of interrupted writes to `path`."""
        marker = f"{TMP_PREFIX}{path.name}."
        try:
            with os.scandir(path.parent) as entries:
                return [Path(e.path) for e in entries
                        if e.name.startswith(marker) and not e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def put(self, key: str, data: bytes | BinaryIO, *, length: int | None = None,
            content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        if (isinstance(data, bytes | bytearray | memoryview)
                and length is not None and length != len(data)):
            raise ValueError(f"length={length} but {len(data)} bytes given")
        try:
            with atomic_writer(path, make_parents=lambda: self._make_parents(path)) as fh:
                if isinstance(data, bytes | bytearray | memoryview):
                    fh.write(data)
                else:
                    copy_stream(data, fh, length)
        except (NotADirectoryError, IsADirectoryError) as exc:
            raise ValueError(f"key {key!r} collides with an existing object or prefix") from exc

    def _open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            # Keys and paths go to the log; the message reaches API bodies.
            log.warning("object store: no object %r", key)
            raise ObjectNotFound("the stored file is missing") from exc

    def get(self, key: str) -> bytes:
        with self._open(key) as fh:
            return fh.read()

    def download(self, key: str, path: Path) -> None:
        with self._open(key) as src, atomic_writer(Path(path)) as dst:
            shutil.copyfileobj(src, dst, CHUNK_SIZE)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        removed = False
        for victim in [path, *self._temp_files(path)]:
            try:
                if stat.S_ISDIR(victim.lstat().st_mode):
                    continue  # a prefix of other keys, not an object
                victim.unlink()
                removed = True
            except (FileNotFoundError, NotADirectoryError):
                pass
        if removed:
            fsync_dir(path.parent)
            self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        prefix = normalise_prefix(prefix)
        if prefix == "":
            # Wiping the whole store is never a consent or retention action;
            # an empty prefix here is a bug in the caller.
            raise ValueError("refusing to delete_prefix('') on the whole store")
        target = self.root.joinpath(*prefix.split("/"))
        removed = 0
        for tmp in self._temp_files(target):
            tmp.unlink(missing_ok=True)
            removed += 1
        try:
            mode = target.lstat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            for dirpath, dirnames, filenames in os.walk(target, topdown=False):
                for name in filenames:
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
                for name in dirnames:
                    sub = os.path.join(dirpath, name)
                    if os.path.islink(sub):
                        os.unlink(sub)
                        removed += 1
                    else:
                        os.rmdir(sub)
            os.rmdir(target)
        elif mode is not None:
            target.unlink()
            removed += 1
        if removed or mode is not None:
            with suppress(FileNotFoundError):
                fsync_dir(target.parent)
            self._prune(target.parent)
        return removed

    def _files(self, prefix: str, *, include_temp: bool) -> Iterator[str]:
        """Keys (or temp-file paths) of regular files under a normalised prefix."""
        target = self.root.joinpath(*prefix.split("/")) if prefix else self.root
        if prefix and include_temp:
            for tmp in self._temp_files(target):
                yield tmp.relative_to(self.root).as_posix()
        if target.is_file() and not target.is_symlink():
            yield prefix
            return
        if not target.is_dir() or target.is_symlink():
            return
        for dirpath, _dirnames, filenames in os.walk(target):
            base = Path(dirpath).relative_to(self.root)
            for name in filenames:
                if not include_temp and name.startswith(TMP_PREFIX):
                    continue
                yield (base / name).as_posix()

    def list_keys(self, prefix: str) -> Iterator[str]:
        return iter(sorted(self._files(normalise_prefix(prefix), include_temp=False)))

    def count_versions(self, prefix: str) -> int:
        return sum(1 for _ in self._files(normalise_prefix(prefix), include_temp=True))

    def list_version_keys(self, prefix: str) -> Iterator[str]:
        # One version per file; a partly written temp file is not a key.
        return self.list_keys(prefix)
