"""Results made elsewhere (an `imported` method's images), matched to a dataset's HR images by
name stem and stored with the same all-or-nothing rule as datasets."""

from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from sr_models.evaluate import match_files
from study.datasets.archives import open_zip
from study.datasets.importing import (
    ImportReport,
    advising_on_full_disk,
    counter,
    decode_image,
    join_notes,
    removing_files_on_failure,
)
from study.models import Dataset, ImportedResult, Method


def import_results(
    dataset_name,
    method_slug,
    files,
    skip_bad=False,
    scale=None,
    lr_input=None,
    report=None,
    progress=None,
):
    """Attach results made elsewhere to a dataset's images as the `imported` method `method_slug`.

    Files are matched to images by name stem with `sr_models.evaluate`'s tolerance
    (`baby_SRGAN-VGG54.png` is the result for `baby_HR.png`). A result must be the size of its
    HR image, or of that image modcropped to `scale`. A missing result is reported; an unmatched
    file, an unreadable one and a wrong size are errors.
    `lr_input` records how the LR images the results were made from were produced (a kernel
    name, "dataset" or "unknown", the default for a new method): exports state it per method.
    `report` may come with problems found earlier (a zip's unsafe entries), which count as bad
    files; `progress(done, total)`, if given, is called as each file has been checked.
    """
    dataset = _check_target(dataset_name, method_slug, lr_input)
    report = report or ImportReport(dataset=dataset_name)
    matched = _match_results(
        dataset, dict(files), scale or settings.SRMOS_DEFAULT_SCALE, report, progress
    )
    report.settle(skip_bad)
    _store_results(method_slug, dataset, matched, lr_input)
    return report


def _check_target(dataset_name, method_slug, lr_input):
    """The dataset, once the dataset, the method and the LR provenance are fit for an import;
    otherwise ValueError with the reason."""
    valid = [value for value, _ in Method._meta.get_field("lr_input").choices if value]
    if lr_input is not None and lr_input not in valid:
        raise ValueError(f"unknown LR provenance {lr_input!r}: choose one of {', '.join(valid)}")
    dataset = Dataset.objects.filter(name=dataset_name).first()
    if dataset is None:
        raise ValueError(f"no dataset {dataset_name!r}")
    method = Method.objects.filter(slug=method_slug).first()
    if method is not None and lr_input and lr_input != method.lr_input and method.in_use():
        raise ValueError(
            f"method {method_slug} has candidates in a campaign, made from LR inputs "
            f"'{method.lr_input or Method.LR_UNKNOWN}': its LR provenance cannot change now. "
            "Import these results as a new method."
        )
    if method is not None and method.kind != Method.IMPORTED:
        raise ValueError(
            f"method {method_slug} is {method.get_kind_display().lower()}, not imported"
        )
    return dataset


def _match_results(dataset, by_name, scale, report, progress):
    """[(image, decoded result)] for the files that fit; every other file is reported."""
    images = {image.name: image for image in dataset.images.all()}
    tick = counter(progress, len(by_name))
    pairs, unmatched_hr, unmatched_sr = match_files(
        [Path(f"{name}.png") for name in images], [Path(name) for name in sorted(by_name)]
    )
    matched = []
    for _key, hr_path, sr_path in pairs:
        image = images[hr_path.stem]
        name = sr_path.name
        try:
            item = decode_image(name, by_name[name])
        except ValueError as exc:
            report.add(name, "error", str(exc))
            continue
        finally:
            tick()
        sizes = {
            (image.width, image.height),
            (image.width - image.width % scale, image.height - image.height % scale),
        }
        if (item.width, item.height) not in sizes:
            report.add(
                name,
                "error",
                f"size {item.width}x{item.height} differs from {image.original_name} "
                f"{image.width}x{image.height}",
            )
            continue
        matched.append((image, item))
        report.add(name, "imported", f"result for {image.original_name}" + join_notes(item.notes))
    for path in unmatched_sr:
        report.add(path.name, "error", f"matches no image of {dataset.name} (or a second result)")
        tick()
    for path in unmatched_hr:
        report.add(images[path.stem].original_name, "missing", "no result file for this image")
    return matched


def import_results_zip(dataset_name, method_slug, upload, skip_bad=False, **kwargs):
    """`import_results` from an uploaded zip (a file object); unsafe entries are bad files.

    LR folders in the zip are read as results too: a results zip has no LR images."""
    report = ImportReport(dataset=dataset_name)
    with open_zip(upload, report) as (images, lows, _):
        if not images and not lows and not report.errors:
            raise ValueError("the zip holds no files")
        return import_results(
            dataset_name, method_slug, images + lows, skip_bad=skip_bad, report=report, **kwargs
        )


def _store_results(method_slug, dataset, matched, lr_input):
    replaced = []
    items = [item for _, item in matched]
    with (
        removing_files_on_failure() as written,
        advising_on_full_disk(items, what="results"),
    ):
        with transaction.atomic():
            method, _ = Method.objects.get_or_create(
                slug=method_slug,
                defaults={
                    "name": method_slug,
                    "kind": Method.IMPORTED,
                    "description": "Results imported from files.",
                    "lr_input": lr_input or Method.LR_UNKNOWN,
                },
            )
            if lr_input and method.lr_input != lr_input:
                # Said again for a method not yet used by any campaign: the newest word counts.
                method.lr_input = lr_input
                method.save(update_fields=["lr_input"])
            for image, item in matched:
                path = default_storage.save(
                    f"results/{method.slug}/{dataset.name}/{image.name}.png",
                    ContentFile(item.png()),
                )
                written.append(path)
                old = ImportedResult.objects.filter(method=method, image=image).first()
                if old:
                    replaced.append(old.file.name)
                    old.delete()
                ImportedResult.objects.create(
                    method=method,
                    image=image,
                    original_name=item.name,
                    file=path,
                    width=item.width,
                    height=item.height,
                    sha256=item.sha256,
                )
    for name in replaced:
        default_storage.delete(name)
