"""Getting images in: datasets (HR, optionally their own LR) and results made elsewhere.

Every file is checked and decoded before anything is written; one bad file imports nothing
unless the caller asks to skip bad files, and a failure while writing removes the files already
written. The report names each file and what happened to it.

Memory stays bounded by one image: a file is read when it is checked and read again when it is
stored (a zip member is inflated on demand, `study.datasets.archives`). An image is taken by its
content, PNG, JPEG or BMP only, whatever its name says (an EPS would run Ghostscript, a TIFF
brings decoders nobody asked for), and refused above SRMOS_MAX_IMAGE_PIXELS before it is decoded.
"""

import hashlib
import io
import re
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from sr_models.evaluate import match_files
from study.datasets.archives import open_zip
from study.models import Dataset, LowResImage, SourceImage
from study.storage import DiskFull

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
# Pillow's names for the formats taken; anything else is refused by content.
IMAGE_FORMATS = ["PNG", "JPEG", "BMP"]


@dataclass
class FileReport:
    name: str
    status: str  # "imported", "error", "skipped", "missing" or "ignored"
    message: str = ""


@dataclass
class ImportReport:
    dataset: str
    files: list = field(default_factory=list)

    @property
    def errors(self):
        return [f for f in self.files if f.status == "error"]

    @property
    def imported(self):
        return [f for f in self.files if f.status == "imported"]

    def add(self, name, status, message=""):
        self.files.append(FileReport(name, status, message))

    def settle(self, skip_bad):
        """All or nothing: with bad files, raise ImportFailed, or skip them when asked to."""
        if self.errors and not skip_bad:
            for f in self.imported:
                f.status, f.message = "skipped", "not imported because other files are bad"
            raise ImportFailed(self)
        for f in self.errors:
            f.status = "skipped"

    def lines(self):
        for f in self.files:
            yield f"{f.status:9} {f.name}" + (f": {f.message}" if f.message else "")


class ImportFailed(Exception):
    def __init__(self, report):
        self.report = report
        names = ", ".join(f"{f.name} ({f.message})" for f in report.errors)
        super().__init__(f"nothing imported into {report.dataset}: bad files: {names}")


@dataclass
class _Decoded:
    name: str
    stem: str
    width: int
    height: int
    sha256: str
    notes: str
    read: Callable[[], bytes]

    def png(self):
        """The image as an RGB PNG, read again: only one image is in memory at a time."""
        data = self.read()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ValueError(f"{self.name} changed while it was being imported")
        image = open_image(self.name, data)
        out = io.BytesIO()
        (image if image.mode == "RGB" else image.convert("RGB")).save(out, format="PNG")
        return out.getvalue()


# An object's default repr ("<_io.BytesIO object at 0x7f35dd4f8860>"): noise on a page.
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def decoder_detail(exc):
    """The decoder's own words, for the line under the sentence: its exception without
    object addresses."""
    text = _OBJECT_REPR.sub("the file", " ".join(str(exc).split()))
    return f"Detail: {type(exc).__name__}: {text}"


def open_image(name, data):
    """The decoded image in `data` (PNG, JPEG or BMP by content); raises ValueError with the
    reason, before decoding anything larger than SRMOS_MAX_IMAGE_PIXELS."""
    if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError("not an image file (PNG, JPEG or BMP)")
    limit = settings.SRMOS_MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that: refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as probe:
                if probe.width * probe.height > limit:
                    raise Image.DecompressionBombError(f"{probe.width}x{probe.height}")
                probe.verify()
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(
            f"decompression bomb: more pixels than SRMOS_MAX_IMAGE_PIXELS ({limit:,}): {exc}"
        ) from None
    except UnidentifiedImageError:
        # The report and the error name the file; this says what is wrong with it.
        raise ValueError(
            "not a readable image: its content is not PNG, JPEG or BMP, whatever its name says"
        ) from None
    except OSError as exc:
        if "truncated" in str(exc).lower():
            raise ValueError(
                "not a readable image: the file ends early (truncated, e.g. by an interrupted "
                f"copy or download); copy it again.\n{decoder_detail(exc)}"
            ) from None
        raise ValueError(
            "not a readable image: its data is damaged, so it cannot be decoded; export or copy "
            f"it again.\n{decoder_detail(exc)}"
        ) from None
    except Exception as exc:
        raise ValueError(
            "not a readable image: its data is damaged, so it cannot be decoded; export or copy "
            f"it again.\n{decoder_detail(exc)}"
        ) from None
    return image


def decode_image(name, data):
    """Check one file (its bytes, or a function that reads them) and describe it; raises
    ValueError with the reason. The PNG to store is made later, by `_Decoded.png`."""
    read = data if callable(data) else lambda: data
    raw = read()
    image = open_image(name, raw)
    notes = "" if image.mode == "RGB" else f"converted from {image.mode} to RGB"
    return _Decoded(
        name=name,
        stem=Path(name).stem,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(raw).hexdigest(),
        notes=notes,
        read=read,
    )


def _scale_note(width, height, scale):
    if width % scale == 0 and height % scale == 0:
        return ""
    return (
        f"{width}x{height} is not a multiple of {scale}: x{scale} campaigns modcrop it to "
        f"{width - width % scale}x{height - height % scale}"
    )


def import_files(
    dataset_name,
    files,
    skip_bad=False,
    description="",
    is_calibration=False,
    lr_files=(),
    lr_scale=None,
    report=None,
    progress=None,
):
    """Import (name, bytes) pairs of HR images, and optionally their LR versions, into a dataset.

    `lr_files` are matched to the HR images by name stem (as `sr_models.evaluate` matches, so
    `baby_LR.png` is the LR of `baby_HR.png`) and must be exactly `lr_scale` times smaller.
    Unless `skip_bad`, one bad file stops the import and nothing is written; `report` may come
    with problems found earlier (a zip's unsafe entries), which count as bad files.
    `progress(done, total)`, if given, is called as each file has been checked.
    """
    report = report or ImportReport(dataset=dataset_name)
    tick = counter(progress, len(files) + len(lr_files))
    dataset = Dataset.objects.filter(name=dataset_name).first()
    existing = set(dataset.images.values_list("sha256", flat=True)) if dataset else set()
    existing_names = set(dataset.images.values_list("name", flat=True)) if dataset else set()
    scale = lr_scale or settings.SRMOS_DEFAULT_SCALE
    decoded, seen = [], {}
    for name, data in sorted(files, key=lambda f: f[0]):
        try:
            item = decode_image(name, data)
        except ValueError as exc:
            report.add(name, "error", str(exc))
            continue
        finally:
            tick()
        if item.sha256 in existing or item.sha256 in seen:
            twin = seen.get(item.sha256, "an image already in the dataset")
            report.add(name, "error", f"same content as {twin}")
            continue
        taken = {_without_hr(n) for n in existing_names} | {_without_hr(d.stem) for d in decoded}
        if _without_hr(item.stem) in taken:
            report.add(name, "error", f"an image named {_without_hr(item.stem)} exists")
            continue
        seen[item.sha256] = name
        decoded.append(item)
        notes = "; ".join(n for n in (item.notes, _scale_note(item.width, item.height, scale)) if n)
        item.notes = notes
        report.add(name, "imported", notes)
    lows = _match_lr(decoded, lr_files, scale, report, tick) if lr_files else {}
    report.settle(skip_bad)
    _store(dataset_name, decoded, lows, scale, description, is_calibration)
    return report


def counter(progress, total):
    """A function to call once per file checked: it tells `progress(done, total)`, if given."""
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress:
            progress(min(done, total), total)

    if progress:
        progress(0, total)
    return tick


def _match_lr(decoded, lr_files, scale, report, tick):
    """{HR stem: decoded LR}; every LR file that does not fit is reported by name."""
    by_name = dict(lr_files)
    pairs, unmatched_hr, unmatched_lr = match_files(
        [Path(f"{d.stem}.png") for d in decoded], [Path(name) for name in sorted(by_name)]
    )
    hr = {d.stem: d for d in decoded}
    lows = {}
    for _key, hr_path, lr_path in pairs:
        name = lr_path.name
        try:
            item = decode_image(name, by_name[name])
        except ValueError as exc:
            report.add(name, "error", f"LR: {exc}")
            continue
        finally:
            tick()
        high = hr[hr_path.stem]
        want = (high.width // scale, high.height // scale)
        if (item.width, item.height) != want:
            report.add(
                name,
                "error",
                f"LR is {item.width}x{item.height}; {high.name} x1/{scale} is {want[0]}x{want[1]}",
            )
            continue
        lows[hr_path.stem] = item
        report.add(name, "imported", f"LR x{scale} of {high.name}" + join_notes(item.notes))
    for path in unmatched_lr:
        report.add(path.name, "error", "LR file matches no HR image (or a second LR for one)")
        tick()
    for path in unmatched_hr:
        report.add(hr[path.stem].name, "missing", f"no LR x{scale} file")
    return lows


def join_notes(note):
    return f"; {note}" if note else ""


@contextmanager
def removing_files_on_failure():
    """Yield a list to note stored files in; on an exception they are deleted again."""
    written = []
    try:
        yield written
    except Exception:
        for name in written:
            default_storage.delete(name)
        raise


@contextmanager
def advising_on_full_disk(items, what="images"):
    """Re-raise a full disk (`study.storage.DiskFull`) with what this import needs: the
    uncompressed size of its images (their PNGs take less), since nothing of it is kept."""
    try:
        yield
    except DiskFull as full:
        raise full.advise(
            needed=sum(item.width * item.height * 3 for item in items),
            why=f"this import of {len(items)} {what} needs at most that; nothing of it was kept",
            resume="import the files again",
        ) from full.__cause__


_HR_SUFFIX = re.compile(r"[_-](hr|HR)$")


def _without_hr(stem):
    return _HR_SUFFIX.sub("", stem) or stem


def display_names(stems):
    """{file stem: image name}: a suffix every file shares by the benchmarks' convention
    (`baby_HR`, `bird_HR`...) is dropped from the names tables and pages show ("baby"); the
    file's own name stays in `original_name`. Mixed names are kept as they are."""
    stems = list(stems)
    if stems and all(_HR_SUFFIX.search(s) for s in stems):
        bare = [_without_hr(s) for s in stems]
        if len(set(bare)) == len(bare):
            return dict(zip(stems, bare, strict=True))
    return {s: s for s in stems}


def _store(dataset_name, decoded, lows, scale, description, is_calibration):
    names = display_names(d.stem for d in decoded)
    with removing_files_on_failure() as written, advising_on_full_disk([*decoded, *lows.values()]):
        with transaction.atomic():
            dataset, _ = Dataset.objects.get_or_create(
                name=dataset_name,
                defaults={"description": description, "is_calibration": is_calibration},
            )
            for item in decoded:
                image = SourceImage(
                    dataset=dataset,
                    name=names[item.stem],
                    original_name=item.name,
                    width=item.width,
                    height=item.height,
                    sha256=item.sha256,
                    notes=item.notes[:300],
                )
                image.file.save(f"{names[item.stem]}.png", ContentFile(item.png()), save=False)
                written.append(image.file.name)
                image.save()
                low = lows.get(item.stem)
                if low:
                    path = default_storage.save(
                        f"datasets/{dataset.name}/lr_x{scale}/{names[item.stem]}.png",
                        ContentFile(low.png()),
                    )
                    written.append(path)
                    LowResImage.objects.create(
                        image=image,
                        scale=scale,
                        original_name=low.name,
                        file=path,
                        width=low.width,
                        height=low.height,
                    )


def read_folder(folder):
    """(name, read) pairs of a folder's files: each is read when it is checked or stored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    files = [(p.name, p.read_bytes) for p in sorted(folder.iterdir()) if p.is_file()]
    if not files:
        raise ValueError(f"{folder} holds no files")
    return files


def import_folder(dataset_name, folder, lr_folder=None, **kwargs):
    lr_files = read_folder(lr_folder) if lr_folder else ()
    return import_files(dataset_name, read_folder(folder), lr_files=lr_files, **kwargs)


def import_zip(dataset_name, upload, skip_bad=False, lr_scale=None, **kwargs):
    """Import a dataset from an uploaded zip (a file object); unsafe entries are bad files.

    Takes `import_files`' keyword arguments (`description`, `progress`...)."""
    report = ImportReport(dataset=dataset_name)
    with open_zip(upload, report) as (images, lows, scale):
        if not images and not report.errors:
            raise ValueError("the zip holds no files")
        return import_files(
            dataset_name,
            images,
            skip_bad=skip_bad,
            lr_files=lows,
            lr_scale=lr_scale or scale,
            report=report,
            **kwargs,
        )
