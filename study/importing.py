"""Import a folder of HR images as a Dataset: every file checked, nothing half-made."""

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from study.models import Dataset, SourceImage

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass
class FileReport:
    name: str
    status: str  # "imported", "error" or "skipped"
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
    png: bytes
    width: int
    height: int
    sha256: str
    notes: str


def _decode(name, data):
    """Decode and normalise one file to an RGB PNG; raises ValueError with the reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"too many pixels for an image ({exc})") from None
    except Exception as exc:
        raise ValueError(f"not a readable image ({type(exc).__name__}: {exc})") from None
    notes = []
    if image.mode != "RGB":
        notes.append(f"converted from {image.mode} to RGB")
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return _Decoded(
        name=name,
        stem=Path(name).stem,
        png=out.getvalue(),
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(data).hexdigest(),
        notes="; ".join(notes),
    )


def import_files(dataset_name, files, skip_bad=False, description="", is_calibration=False):
    """Import (name, bytes) pairs into a new or existing dataset.

    Every file is decoded first, outside the transaction. Unless `skip_bad`, one bad file stops
    the import and nothing is written; the report names every file and what happened to it.
    """
    report = ImportReport(dataset=dataset_name)
    decoded = []
    existing = set()
    existing_names = set()
    dataset = Dataset.objects.filter(name=dataset_name).first()
    if dataset:
        existing = set(dataset.images.values_list("sha256", flat=True))
        existing_names = set(dataset.images.values_list("name", flat=True))
    seen = {}
    for name, data in sorted(files, key=lambda f: f[0]):
        if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            report.files.append(FileReport(name, "error", "not an image file (PNG, JPEG or BMP)"))
            continue
        try:
            item = _decode(name, data)
        except ValueError as exc:
            report.files.append(FileReport(name, "error", str(exc)))
            continue
        if item.sha256 in existing or item.sha256 in seen:
            twin = seen.get(item.sha256, "an image already in the dataset")
            report.files.append(FileReport(name, "error", f"same content as {twin}"))
            continue
        if item.stem in existing_names or any(d.stem == item.stem for d in decoded):
            report.files.append(FileReport(name, "error", f"an image named {item.stem} exists"))
            continue
        seen[item.sha256] = name
        decoded.append(item)
        report.files.append(FileReport(name, "imported", item.notes))
    if report.errors and not skip_bad:
        for f in report.files:
            if f.status == "imported":
                f.status, f.message = "skipped", "not imported because other files are bad"
        raise ImportFailed(report)
    for f in report.errors:
        f.status = "skipped"
    _store(dataset_name, decoded, description, is_calibration)
    return report


def _store(dataset_name, decoded, description, is_calibration):
    written = []
    try:
        with transaction.atomic():
            dataset, _ = Dataset.objects.get_or_create(
                name=dataset_name,
                defaults={"description": description, "is_calibration": is_calibration},
            )
            for item in decoded:
                image = SourceImage(
                    dataset=dataset,
                    name=item.stem,
                    original_name=item.name,
                    width=item.width,
                    height=item.height,
                    sha256=item.sha256,
                    notes=item.notes,
                )
                image.file.save(f"{item.stem}.png", ContentFile(item.png), save=False)
                written.append(image.file.name)
                image.save()
    except Exception:
        # A failed import leaves no files behind either.
        for name in written:
            default_storage.delete(name)
        raise


def import_folder(dataset_name, folder, **kwargs):
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]
    if not files:
        raise ValueError(f"{folder} holds no files")
    return import_files(dataset_name, files, **kwargs)
