"""A zip import as a researcher does it in the admin, in headless Chromium: upload, the progress
page, the per-file report; and a page that follows a job a worker is running."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from study.models import ImportJob, SourceImage
from tests.conftest import admin_login, png_bytes, sample_image, screenshot, zip_upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]


def zip_bytes(entries):
    return zip_upload(entries).getvalue()


def test_a_researcher_uploads_a_zip_and_sees_the_import_done_with_its_report(
    researcher, live_server, page, eager_celery, tmp_path
):
    entries = {f"set/img{i}.png": png_bytes(sample_image(i)) for i in range(3)}
    entries["set/notes.txt"] = b"not an image"
    archive = tmp_path / "set.zip"
    archive.write_bytes(zip_bytes(entries))
    base = live_server.url
    admin_login(page, base)
    page.goto(f"{base}/admin/study/dataset/")
    page.click("text=Import a zip")
    page.fill("#id_name", "browser-set")
    page.set_input_files("#id_archive", str(archive))
    page.check("#id_skip_bad")
    page.click("#import-form input[type=submit]")
    page.wait_for_selector("#import-report")
    assert page.text_content("#import-status") == "Done"
    assert page.text_content("#import-summary").strip() == (
        "3 files imported into dataset browser-set."
    )
    assert page.locator("#import-report tr.status-imported").count() == 3
    assert "not an image file" in page.text_content("#import-report tr.status-skipped")
    screenshot(page, "import-done")
    page.click("#import-target")
    page.wait_for_selector("text=img2")
    assert SourceImage.objects.filter(dataset__name="browser-set").count() == 3


def test_the_progress_page_follows_the_job_and_runs_again_a_job_whose_worker_died(
    researcher, live_server, page, eager_celery, settings
):
    entries = {f"set/img{i}.png": png_bytes(sample_image(i)) for i in range(3)}
    job = ImportJob.objects.create(
        kind=ImportJob.DATASET, parameters={"dataset": "followed"}, created_by=researcher
    )
    job.archive = default_storage.save(f"imports/{job.pk}.zip", ContentFile(zip_bytes(entries)))
    job.save(update_fields=["archive"])
    base = live_server.url
    admin_login(page, base)
    page.goto(f"{base}/admin/study/dataset/import-zip/{job.pk}/")
    assert page.text_content("#import-status") == "Queued"
    assert page.is_hidden("#import-run-again")

    # A worker takes the job and checks one file of three, then dies: the page keeps up.
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.RUNNING,
        started_at=long_ago,
        lease_expires=long_ago,  # its heartbeat stopped
        files_done=1,
        files_total=3,
    )
    page.wait_for_function("() => document.getElementById('import-count').textContent === '1 of 3'")
    assert page.text_content("#import-status") == "Running"
    assert page.evaluate("() => document.getElementById('import-progress').value") == 1
    page.wait_for_selector("#import-run-again", state="visible")
    assert "The worker stopped mid-import" in page.text_content("#import-stall")
    screenshot(page, "import-stalled")

    page.click("#import-run-again input[type=submit]")
    page.wait_for_selector("#import-report")
    assert page.text_content("#import-status") == "Done"
    assert page.locator("#import-report tr.status-imported").count() == 3
    job.refresh_from_db()
    assert (job.status, job.attempts, job.archive) == (ImportJob.DONE, 1, "")
