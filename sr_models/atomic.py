"""Files written whole or not at all, and a disk-full error that says what to do.

A file is written under a temporary name in its own folder (``.NAME.XXXXXXXX.part``), flushed
to the disk (fsync) and renamed onto its name in one step, so a reader, a crash or a full disk
never leaves a zero-byte or truncated file at the final path: the path holds the old file, the
new one, or nothing. A write that runs out of space (ENOSPC) or quota (EDQUOT) removes its
temporary file and raises `DiskFull`, whose message names the folder, the space free, roughly
the space needed and how to resume. The web app's storage (`study.storage`) uses the same steps.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Filesystems without hard links (some network and FUSE mounts) answer link() with one of these.
_NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS})


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def human_size(n: int | None) -> str:
    """1536 -> "2 KB", 3_400_000 -> "3.4 MB" (decimal units, as `df -H` prints them)."""
    if n is None:
        return "an unknown amount"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} bytes"


def free_space(folder: str | Path) -> int | None:
    """Bytes free on the disk holding `folder` (its nearest existing parent), or None."""
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


class DiskFull(OSError):
    """A write that found its disk full (ENOSPC) or its quota used (EDQUOT); nothing was left at
    the path it was writing.

    ``str()`` is one sentence for the person who must act: which folder's disk is full, how much
    is free, roughly how much the job needs and how to resume. The code that knows the job (a
    campaign's remaining candidates, an import's images) refines it with `advise`.
    """

    def __init__(
        self,
        folder: str | Path,
        name: str,
        size: int | None = None,
        needed: int | None = None,
        why: str = "",
        resume: str = "run it again",
    ):
        super().__init__(errno.ENOSPC, "No space left on device")
        self.folder, self.name, self.size = str(folder), name, size
        self.needed = needed if needed is not None else size
        self.why, self.resume = why, resume
        self.free = free_space(folder)

    def advise(self, *, needed: int | None = None, why: str = "", resume: str) -> DiskFull:
        """The same error with the job's words: roughly the space it needs, why, how to resume
        (the same cause and traceback, so a log shows where the write failed)."""
        advised = DiskFull(
            self.folder,
            self.name,
            self.size,
            needed if needed is not None else self.needed,
            why,
            resume,
        )
        advised.__cause__ = self.__cause__
        return advised.with_traceback(self.__traceback__)

    def __str__(self) -> str:
        size = f" ({human_size(self.size)})" if self.size is not None else ""
        why = f" ({self.why})" if self.why else ""
        return (
            f"The disk that holds {self.folder} is full ({human_size(self.free)} free): "
            f"{self.name}{size} could not be written and nothing was left in its place. "
            f"Free about {human_size(self.needed)} on that disk{why}, then {self.resume}."
        )

    def __reduce__(self):
        return (
            type(self),
            (self.folder, self.name, self.size, self.needed, self.why, self.resume),
        )


def fsync_path(path: str | Path, directory: bool = False) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: str | Path, path: str | Path, *, overwrite: bool = True) -> None:
    """Move the complete file `tmp` onto `path` (same folder) in one step, after flushing it.

    With ``overwrite=False`` an existing `path` is never replaced: FileExistsError, and `tmp`
    stays for the caller to publish under another name or remove.
    """
    fsync_path(tmp)
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            # link() refuses an existing `path`: a check, then a rename, would race another writer.
            os.link(tmp, path)
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
            os.rename(tmp, path)
        else:
            os.unlink(tmp)
    try:
        fsync_path(os.path.dirname(os.path.abspath(path)), directory=True)
    except OSError:
        pass  # some filesystems refuse a folder's fsync; the rename itself is done


def part_name(name: str) -> str:
    """The temporary name a file is written under beside `name`: hidden, unique, and short
    enough for the filesystem's 255-byte limit whatever `name` is."""
    return f".{name[:100]}.{secrets.token_hex(4)}.part"


def discard(tmp: str | Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


@contextmanager
def atomic_file(
    path: str | Path, size: int | None = None, resume: str = "run the command again"
) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: it appears at `path` complete when the block ends,
    and not at all when the block raises (an existing file there is kept).

    Args:
        size: the bytes to be written, if known: a disk-full message says how much is needed.
        resume: how to carry on once space is free, the end of a disk-full message.
    Raises:
        DiskFull: the disk ran out of space (or quota).
    """
    path = Path(path)
    tmp = path.with_name(part_name(path.name))
    try:
        # 0o666 less the umask, as open() gives: mkstemp's 0600 would hide it from other users.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            yield f
        publish(tmp, path)
    except BaseException as exc:
        discard(tmp)
        if is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise DiskFull(path.parent, path.name, size, resume=resume) from exc
        raise


def write_bytes(path: str | Path, data: bytes, resume: str = "run the command again") -> None:
    """Write `data` to `path` whole or not at all (`atomic_file`)."""
    with atomic_file(path, size=len(data), resume=resume) as f:
        f.write(data)
