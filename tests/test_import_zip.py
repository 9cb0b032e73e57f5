"""A dataset uploaded as a zip in the admin: every file checked, a report, all or nothing."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import TestCase
from django.urls import reverse
from PIL import Image

from study.generation.queue import start_generation
from study.models import Campaign, Dataset, LowResImage, Method, SourceImage
from tests.conftest import png_bytes, sample_image, zip_upload

# The upload's import runs in-process (eager Celery) once the request's transaction commits.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def encoded(array, mode=None, fmt="PNG"):
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(buffer, format=fmt)
    return buffer.getvalue()


def make_zip(entries):
    return zip_upload(entries, name="dataset.zip")


def bad_zip():
    good = png_bytes(sample_image(0))
    return make_zip(
        {
            "set/img0.png": good,
            "set/img1.jpg": encoded(sample_image(1), fmt="JPEG"),
            "set/grey.png": encoded(sample_image(2), mode="L"),
            "set/alpha.png": encoded(sample_image(3), mode="RGBA"),
            "set/odd.png": png_bytes(sample_image(4, size=(49, 66))),
            "set/notes.txt": b"not an image",
            "set/corrupt.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
            "set/truncated.png": png_bytes(sample_image(5))[:-400],
            "set/bomb.png": png_bytes(np.zeros((120, 120, 3), np.uint8)),
            "set/copy.png": good,
            "../escape.png": good,
            "set/__MACOSX/._img0.png": b"",
        }
    )


def post(client, upload, **fields):
    """Upload, let the import job run, and open the job's page (its report)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            reverse("admin:study_dataset_import_zip"),
            {"name": "zipped", "archive": upload, **fields},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    return client.get(response.url)


def report_rows(html):
    import re

    rows = re.findall(
        r'<tr class="status-(\w+)"><td>([^<]*)</td><td>\w+</td><td>([^<]*)</td>', html
    )
    return {name: (status, message) for status, name, message in rows}


@pytest.fixture
def small_pixel_limit(settings):
    """A zip with a "bomb": 120x120 is one under a limit of 4,000 pixels."""
    settings.SRMOS_MAX_IMAGE_PIXELS = 4000
    return bad_zip()


def test_it_checks_every_file_and_imports_nothing_when_one_is_bad(
    client, researcher, media_root, small_pixel_limit
):
    client.force_login(researcher)
    response = post(client, small_pixel_limit)
    assert response.status_code == 200
    rows = report_rows(response.content.decode())
    assert rows["../escape.png"] == ("error", "unsafe path in the zip (absolute or with ..)")
    assert rows["notes.txt"] == ("error", "not an image file (PNG, JPEG or BMP)")
    assert rows["corrupt.png"][0] == "error" and "not a readable image" in rows["corrupt.png"][1]
    assert rows["truncated.png"][0] == "error" and "truncated" in rows["truncated.png"][1]
    assert rows["bomb.png"][0] == "error" and "decompression bomb" in rows["bomb.png"][1]
    assert rows["img0.png"] == ("error", "same content as copy.png")
    assert rows["img1.jpg"] == ("skipped", "not imported because other files are bad")
    assert rows["set/__MACOSX/._img0.png"][0] == "ignored"
    assert "Nothing was imported" in response.content.decode()
    assert not Dataset.objects.filter(name="zipped").exists()
    assert SourceImage.objects.count() == 0
    assert not (media_root / "datasets").exists()


def test_it_can_import_the_good_files_and_says_what_it_changed(
    client, researcher, small_pixel_limit
):
    client.force_login(researcher)
    response = post(client, small_pixel_limit, skip_bad="on")
    rows = report_rows(response.content.decode())
    assert rows["grey.png"] == ("imported", "converted from L to RGB")
    assert rows["alpha.png"] == ("imported", "converted from RGBA to RGB")
    assert rows["odd.png"] == (
        "imported",
        "66x49 is not a multiple of 4: x4 campaigns modcrop it to 64x48",
    )
    assert rows["notes.txt"][0] == "skipped" and rows["../escape.png"][0] == "skipped"
    dataset = Dataset.objects.get(name="zipped")
    assert sorted(dataset.images.values_list("name", flat=True)) == [
        "alpha",
        "copy",
        "grey",
        "img1",
        "odd",
    ]
    with default_storage.open(dataset.images.get(name="grey").file.name) as fh:
        assert Image.open(fh).mode == "RGB"


def test_a_zip_that_is_not_a_zip_is_refused(client, researcher):
    client.force_login(researcher)
    upload = io.BytesIO(b"hello")
    upload.name = "x.zip"
    response = post(client, upload)
    assert "not a zip file" in response.content.decode()
    assert not Dataset.objects.exists()


def test_the_dataset_list_links_to_the_zip_import(client, researcher):
    client.force_login(researcher)
    html = client.get(reverse("admin:study_dataset_changelist")).content.decode()
    assert reverse("admin:study_dataset_import_zip") in html


def lr_of(hr):
    from sr_models.degrade import degrade

    return degrade(hr, 4, kernel="pil-bicubic")


def test_a_dataset_brings_its_own_lr_images_and_a_campaign_uses_them(
    client, researcher, builtin_methods, eager_celery, django_capture_on_commit_callbacks
):
    from sr_models.methods import get_method
    from study.generation.inputs import read_png

    hrs = {f"im{i}": sample_image(i, size=(32, 48)) for i in range(2)}
    entries = {f"HR/{k}_HR.png": png_bytes(v) for k, v in hrs.items()}
    entries.update({f"LRx4/{k}_LR.png": png_bytes(lr_of(v)) for k, v in hrs.items()})
    entries["LRx4/im9_LR.png"] = png_bytes(lr_of(sample_image(9, size=(32, 48))))
    entries["LRx4/im1_LR2.png"] = png_bytes(sample_image(8, size=(9, 9)))
    client.force_login(researcher)
    rows = report_rows(post(client, make_zip(entries), skip_bad="on").content.decode())
    assert rows["im0_LR.png"] == ("imported", "LR x4 of im0_HR.png")
    assert rows["im9_LR.png"][0] == "skipped"
    assert rows["im1_LR2.png"][0] == "skipped"
    assert LowResImage.objects.count() == 2

    campaign = Campaign.objects.create(name="own-lr", lr_source=Campaign.LR_DATASET)
    campaign.datasets.set(Dataset.objects.filter(name="zipped"))
    campaign.methods.set(Method.objects.filter(slug="bicubic"))
    with django_capture_on_commit_callbacks(execute=True):
        start_generation(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    assert campaign.lr_description() == "dataset LR images (x4)"
    bicubic = get_method("bicubic", 4)
    for candidate in campaign.candidates.select_related("image"):
        expected = bicubic.upscale(lr_of(hrs[candidate.image.name]))
        assert np.array_equal(read_png(candidate.file.name), expected)


def test_a_campaign_without_lr_images_for_its_dataset_fails_each_candidate_clearly(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    campaign = make_campaign(methods=("bicubic",))
    Campaign.objects.filter(pk=campaign.pk).update(lr_source=Campaign.LR_DATASET)
    with django_capture_on_commit_callbacks(execute=True):
        start_generation(campaign)
    errors = set(campaign.candidates.values_list("error", flat=True))
    assert all("has no LR image for x4 in its dataset" in e for e in errors)


def test_the_lr_source_is_in_the_exported_report(live_campaign, tmp_path):
    from study.reports import frames as reports

    rater = live_campaign.raters.first()
    for trial in rater.trials.order_by("position"):
        trial.mark_shown()  # the page handed it out
        rater.cast_vote(trial.position, 3)
    reports.export_report(live_campaign, tmp_path)
    assert (
        "lr_source: HR degraded x4 with matlab-bicubic" in (tmp_path / "campaign.txt").read_text()
    )
