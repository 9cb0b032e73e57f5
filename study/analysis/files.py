"""Report folders written whole or not at all: the files go to a temporary folder beside the
destination and are renamed into place once every one of them is written, so a failed report
(an analysis error, a full disk, a killed process) leaves no half-written folder behind."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_folder(out_dir: str | Path) -> Iterator[Path]:
    """Yield a temporary folder on the same file system as ``out_dir``; on success move what was
    written there into ``out_dir``, on an exception remove it and leave ``out_dir`` untouched.

    A new (or empty) ``out_dir`` appears in one rename. An existing folder keeps the files it
    had; each report file replaces its namesake by a rename of its own (never a half-written
    file), after the whole report was written.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        _move_into(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into(tmp: Path, out: Path) -> None:
    try:
        os.rename(tmp, out)  # out absent, or an empty folder: the whole report at once
        return
    except OSError:
        pass
    for path in sorted(tmp.rglob("*")):
        if path.is_file():
            target = out / path.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)


def moved(paths: Mapping[str, Path], tmp: Path, out_dir: str | Path) -> dict[str, Path]:
    """The paths a writer returned inside ``tmp``, where :func:`atomic_folder` put them."""
    out = Path(out_dir)
    return {name: out / Path(p).relative_to(tmp) for name, p in paths.items()}


def writes_whole(writer: Callable) -> Callable:
    """Make ``writer(votes, out_dir, ...)`` write into a temporary folder moved into place when
    it returns (:func:`atomic_folder`); ``out_dir=None`` (tables in memory only) is passed on."""

    @functools.wraps(writer)
    def whole(votes, out_dir, *args, **kwargs):
        if out_dir is None:
            return writer(votes, out_dir, *args, **kwargs)
        with atomic_folder(out_dir) as tmp:
            paths = writer(votes, tmp, *args, **kwargs)
        return moved(paths, tmp, out_dir)

    return whole
