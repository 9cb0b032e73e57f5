"""Reading an uploaded zip of images with bounded memory and bounded work.

A zip is checked from its headers before any member is inflated: the total uncompressed size
(SRMOS_MAX_ZIP_MB) refuses the whole zip, a member over SRMOS_MAX_ZIP_MEMBER_MB is a bad file.
Headers can lie, so the limits hold while reading too: a member is read on demand, one at a time,
never past its limit, and the bytes read so far count against the zip's total. Nothing is
extracted to disk. Entries in a folder named like `LR`, `LRx4` or `lr_x4` are LR images.
"""

import re
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import PurePosixPath

from django.conf import settings

# Folders of a zip (or `--lr-dir` names) that hold LR images, e.g. `LRx4/` or `lr_x4/`.
LR_FOLDER = re.compile(r"^lr[_-]?(x(?P<scale>\d))?$", re.IGNORECASE)


def megabytes(size):
    return f"{size / 2**20:,.0f} MB" if size >= 2**20 else f"{size:,} bytes"


@contextmanager
def open_zip(upload, report):
    """Yield (images, lr_images, lr_scale) of a zip (a file object); the zip is open inside.

    Images are (name, read) pairs: `read()` returns the member's bytes, or raises ValueError
    (corrupt, or larger than a limit). Unsafe or oversized entries go to `report` as bad files;
    a zip too large in all raises ValueError before anything is read.
    """
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(
            "not a zip file: it cannot be opened as one (another kind of archive renamed .zip, "
            f"or a zip cut short); make the zip again.\nDetail: {type(exc).__name__}: {exc}"
        ) from None
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        declared = sum(info.file_size for info in entries)
        if declared > settings.SRMOS_MAX_ZIP_BYTES:
            raise ValueError(
                f"the zip holds {megabytes(declared)} once uncompressed; the limit is "
                f"{megabytes(settings.SRMOS_MAX_ZIP_BYTES)} (SRMOS_MAX_ZIP_MB)"
            )
        members = _Members(archive)
        images, lows, scale = [], [], None
        for info in entries:
            path = _checked_path(info, report)
            if path is None:
                continue
            folder = LR_FOLDER.match(path.parent.name) if len(path.parts) > 1 else None
            if folder:
                lows.append((path.name, members.reader(info)))
                scale = int(folder["scale"]) if folder["scale"] else scale
            else:
                images.append((path.name, members.reader(info)))
        yield images, lows, scale


def _checked_path(info, report):
    """The entry's path, or None once `report` says why it is not read."""
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        report.add(name, "error", "unsafe path in the zip (absolute or with ..)")
        return None
    if path.parts[0] == "__MACOSX" or path.name.startswith("."):
        report.add(name, "ignored", "system file")
        return None
    limit = settings.SRMOS_MAX_ZIP_MEMBER_BYTES
    if info.file_size > limit:
        report.add(
            name,
            "error",
            f"too large once uncompressed ({megabytes(info.file_size)}; the limit is "
            f"{megabytes(limit)}, SRMOS_MAX_ZIP_MEMBER_MB): a zip bomb?",
        )
        return None
    return path


class _Members:
    """Reads members on demand, each at most once against the zip's total (an import reads a
    member again to store it)."""

    def __init__(self, archive):
        self.archive = archive
        self.counted = {}

    def reader(self, info):
        return lambda: self.read(info)

    def read(self, info):
        limit = settings.SRMOS_MAX_ZIP_MEMBER_BYTES
        try:
            with self.archive.open(info) as member:
                data = member.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise ValueError(
                "corrupt zip entry: it cannot be unpacked (the zip was cut short or altered); "
                f"make the zip again.\nDetail: {type(exc).__name__}: {exc}"
            ) from None
        if len(data) > limit:
            raise ValueError(
                f"larger once uncompressed than {megabytes(limit)} (SRMOS_MAX_ZIP_MEMBER_MB), "
                "whatever its header says: a zip bomb?"
            )
        self.counted[info.header_offset] = len(data)
        if sum(self.counted.values()) > settings.SRMOS_MAX_ZIP_BYTES:
            raise ValueError(
                f"the zip holds more than {megabytes(settings.SRMOS_MAX_ZIP_BYTES)} once "
                "uncompressed, whatever its headers say (SRMOS_MAX_ZIP_MB)"
            )
        return data
