"""Imports from the admin run as jobs: the upload is stored, a worker imports it (here in-process,
eager Celery, or a real worker process), and the job's page shows progress, then the report."""

import io
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from study.datasets import jobs
from study.datasets.importing import import_files
from study.datasets.tasks import run_import
from study.models import Dataset, ImportJob, Method, SourceImage
from tests.conftest import png_bytes, sample_image, worker_env, zip_upload

pytestmark = pytest.mark.django_db


def make_zip(entries):
    return zip_upload(entries, name="upload.zip")


def good_zip(n=3):
    return make_zip({f"set/img{i}.png": png_bytes(sample_image(i)) for i in range(n)})


def upload_dataset(client, upload, run=True, **fields):
    """POST the dataset form; with `run`, the job's task runs as the transaction commits."""
    url = reverse("admin:study_dataset_import_zip")
    with TestCase.captureOnCommitCallbacks(execute=run):
        response = client.post(url, {"name": "zipped", "archive": upload, **fields})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def upload_results(client, dataset, upload, **fields):
    url = reverse("admin:study_method_import_results")
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(url, {"dataset": dataset.pk, "archive": upload, **fields})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def report_rows(html):
    rows = re.findall(
        r'<tr class="status-(\w+)"><td>([^<]*)</td><td>\w+</td><td>([^<]*)</td>', html
    )
    return {name: (status, message) for status, name, message in rows}


def only_job():
    (job,) = ImportJob.objects.all()
    return job


# What static/study/follow.js reads from the same answer: where to put the job's state.
FOLLOW_KEYS = {"settled", "reload", "interval", "text", "attrs", "hidden"}


def status_of(client, job):
    answer = client.get(reverse("admin:study_dataset_import_job_status", args=[job.pk])).json()
    return {key: value for key, value in answer.items() if key not in FOLLOW_KEYS}


def test_an_upload_becomes_a_job_whose_page_shows_progress_then_the_report(
    client, researcher, eager_celery, media_root
):
    client.force_login(researcher)
    response = upload_dataset(client, good_zip(), description="three crops")
    job = only_job()
    assert response.url == reverse("admin:study_dataset_import_job", args=[job.pk])
    assert job.kind == ImportJob.DATASET and job.created_by == researcher
    assert job.parameters == {
        "dataset": "zipped",
        "skip_bad": False,
        "description": "three crops",
        "is_calibration": False,
    }
    assert (job.status, job.files_done, job.files_total, job.attempts) == ("done", 3, 3, 1)
    assert job.started_at <= job.finished_at
    html = client.get(response.url).content.decode()
    assert "3 files imported into dataset zipped." in html
    assert report_rows(html)["img0.png"] == ("imported", "")
    assert reverse("admin:study_dataset_change", args=[Dataset.objects.get().pk]) in html
    assert status_of(client, job) | {"stall": ""} == {
        "id": job.pk,
        "status": "done",
        "status_display": "Done",
        "files_done": 3,
        "files_total": 3,
        "percent": 100,
        "finished": True,
        "summary": "3 files imported into dataset zipped.",
        "stall": "",
    }
    assert Dataset.objects.get(name="zipped").description == "three crops"
    # Settled: the stored upload is gone, the images are in place.
    assert job.archive == "" and not list((media_root / "imports").iterdir())
    assert SourceImage.objects.count() == 3


def test_a_file_that_is_not_a_zip_fails_with_the_reason_and_imports_nothing(
    client, researcher, eager_celery, media_root
):
    client.force_login(researcher)
    upload = io.BytesIO(b"hello")
    upload.name = "x.zip"
    html = client.get(upload_dataset(client, upload).url).content.decode()
    job = only_job()
    assert job.status == ImportJob.FAILED
    assert job.error.startswith("not a zip file")
    assert 'id="import-error"' in html and "not a zip file" in html
    assert "Nothing was imported into dataset zipped" in html
    assert not Dataset.objects.exists()
    assert not list((media_root / "imports").iterdir())


def test_one_bad_file_fails_the_job_and_the_report_names_it(client, researcher, eager_celery):
    client.force_login(researcher)
    entries = {"set/img0.png": png_bytes(sample_image(0)), "set/notes.txt": b"not an image"}
    html = client.get(upload_dataset(client, make_zip(entries)).url).content.decode()
    job = only_job()
    assert job.status == ImportJob.FAILED
    assert job.error.startswith("1 bad file (notes.txt)")
    rows = report_rows(html)
    assert rows["notes.txt"] == ("error", "not an image file (PNG, JPEG or BMP)")
    assert rows["img0.png"] == ("skipped", "not imported because other files are bad")
    assert "Nothing was imported: the report, file by file" in html
    assert "Skip bad" in html
    assert not Dataset.objects.exists() and not SourceImage.objects.exists()


def test_skip_bad_imports_the_good_files_and_reports_the_rest(client, researcher, eager_celery):
    client.force_login(researcher)
    entries = {
        "set/img0.png": png_bytes(sample_image(0)),
        "set/img1.png": png_bytes(sample_image(1)),
        "set/notes.txt": b"not an image",
    }
    html = client.get(upload_dataset(client, make_zip(entries), skip_bad="on").url)
    html = html.content.decode()
    job = only_job()
    assert job.status == ImportJob.DONE and job.parameters["skip_bad"] is True
    assert report_rows(html)["notes.txt"] == ("skipped", "not an image file (PNG, JPEG or BMP)")
    assert "2 files imported into dataset zipped" in html
    assert sorted(SourceImage.objects.values_list("name", flat=True)) == ["img0", "img1"]


def test_results_for_an_imported_method_keep_their_lr_provenance(
    client, researcher, dataset, eager_celery
):
    client.force_login(researcher)
    files = {f"out/img{i}_theirs.png": png_bytes(sample_image(i + 10)) for i in range(3)}
    upload_results(client, dataset, make_zip(files), method="theirs", lr_input="unknown")
    assert Method.objects.get(slug="theirs").lr_input == "unknown"

    files = {f"out/img{i}_theirs.png": png_bytes(sample_image(i + 20)) for i in range(3)}
    response = upload_results(client, dataset, make_zip(files), method="theirs", lr_input="dataset")
    job = ImportJob.objects.filter(kind=ImportJob.RESULTS).first()
    assert response.url == reverse("admin:study_method_import_job", args=[job.pk])
    assert job.parameters["lr_input"] == "dataset" and job.status == ImportJob.DONE
    method = Method.objects.get(slug="theirs")
    assert method.kind == Method.IMPORTED and method.lr_input == "dataset"
    assert method.results.count() == 3
    html = client.get(response.url).content.decode()
    assert "3 results imported into method theirs on dataset tiny." in html
    assert report_rows(html)["img0_theirs.png"] == ("imported", "result for img0.png")
    assert reverse("admin:study_method_change", args=[method.pk]) in html
    # A results job is the methods' page, not the datasets'.
    missing = client.get(reverse("admin:study_dataset_import_job", args=[job.pk]))
    assert missing.status_code == 404


def test_a_results_import_for_a_method_that_is_not_imported_fails_clearly(
    client, researcher, dataset, eager_celery
):
    client.force_login(researcher)
    files = {"img0.png": png_bytes(sample_image(0))}
    response = upload_results(client, dataset, make_zip(files), method="bicubic")
    assert only_job().error == "method bicubic is interpolation, not imported"
    assert "bicubic is interpolation, not imported" in client.get(response.url).content.decode()


def test_the_methods_list_links_to_the_results_import(client, researcher, builtin_methods):
    client.force_login(researcher)
    html = client.get(reverse("admin:study_method_changelist")).content.decode()
    assert reverse("admin:study_method_import_results") in html
    assert "Import results (zip)" in html


def test_a_redelivered_task_is_a_no_op(client, researcher, eager_celery):
    client.force_login(researcher)
    upload_dataset(client, good_zip())
    job = only_job()
    before = (job.status, job.report, job.attempts, job.finished_at)
    run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.report, job.attempts, job.finished_at) == before
    assert SourceImage.objects.count() == 3
    run_import(job.pk + 1000)  # a job that is gone: nothing to do


def stored_job(status=ImportJob.QUEUED, **fields):
    """A job row with its zip in storage, as the upload view leaves it."""
    job = ImportJob.objects.create(
        kind=ImportJob.DATASET, parameters={"dataset": "zipped"}, status=status, **fields
    )
    job.archive = default_storage.save(f"imports/{job.pk}.zip", ContentFile(good_zip().read()))
    job.save(update_fields=["archive"])
    return job


def test_a_task_delivered_while_another_worker_runs_the_job_does_nothing():
    job = stored_job(ImportJob.RUNNING, started_at=timezone.now(), claim="a" * 32, attempts=1)
    run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.claim, job.attempts) == (ImportJob.RUNNING, "a" * 32, 1)
    assert default_storage.exists(job.archive) and not SourceImage.objects.exists()


def test_a_job_whose_worker_died_is_taken_over_and_finished(settings):
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    job = stored_job(
        ImportJob.RUNNING, started_at=long_ago, lease_expires=long_ago, claim="b" * 32, attempts=1
    )
    assert "The worker stopped mid-import" in jobs.stall_message(job)
    run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.files_done) == (ImportJob.DONE, 2, 3)
    assert job.claim != "b" * 32 and SourceImage.objects.count() == 3


def test_a_queued_job_nobody_takes_says_so_and_can_run_again(
    client, researcher, media_root, monkeypatch, eager_celery
):
    client.force_login(researcher)
    response = upload_dataset(client, good_zip(), run=False)  # published to no worker
    job = only_job()
    assert status_of(client, job)["stall"] == ""
    html = client.get(response.url).content.decode()
    assert "Waiting for a worker." in html and 'id="import-progress"' in html
    assert 'id="import-run-again" hidden' in html

    monkeypatch.setattr(jobs, "STALL_SECONDS", -1)
    state = status_of(client, job)
    assert state["status"] == "queued" and not state["finished"]
    assert state["stall"].startswith("No worker has taken this import for")
    assert "celery -A config worker -Q cpu" in state["stall"]
    assert default_storage.exists(job.archive)  # the upload waits, kept

    again = reverse("admin:study_dataset_import_job_run_again", args=[job.pk])
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert client.post(again).status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.DONE and SourceImage.objects.count() == 3
    follow = client.post(again, follow=True).content.decode()
    assert "nothing to run again" in follow


def test_progress_is_reported_file_by_file():
    calls = []
    files = [(f"img{i}.png", png_bytes(sample_image(i))) for i in range(3)]
    import_files(
        "counted",
        files + [("notes.txt", b"x")],
        skip_bad=True,
        progress=lambda *done_total: calls.append(done_total),
    )
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_an_outsider_gets_404_and_a_non_staff_user_the_login_page(
    client, researcher, django_user_model, eager_celery
):
    client.force_login(researcher)
    upload_dataset(client, good_zip())
    job = only_job()
    page = reverse("admin:study_dataset_import_job", args=[job.pk])
    status = reverse("admin:study_dataset_import_job_status", args=[job.pk])

    colleague = django_user_model.objects.create_user("colleague", password="pw", is_staff=True)
    colleague.user_permissions.set(
        Permission.objects.filter(codename__in=["add_dataset", "view_dataset"])
    )
    client.force_login(colleague)
    assert client.get(page).status_code == 404
    assert client.get(status).status_code == 404
    form = client.get(reverse("admin:study_dataset_import_zip")).content.decode()
    assert page not in form  # someone else's import is not listed either

    plain = django_user_model.objects.create_user("rater", password="pw")
    client.force_login(plain)
    for url in (page, status):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response.url
    client.logout()
    assert client.get(status).status_code == 302

    client.force_login(researcher)
    form = client.get(reverse("admin:study_dataset_import_zip")).content.decode()
    assert page in form  # the researcher finds the import again under the form


def wait_for(job, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.finished:
            return job
        time.sleep(0.2)
    pytest.fail(f"import job {job.pk} still {job.status} after {timeout} s")


@pytest.fixture
def redis_broker(redis_url):
    """Publish to Redis for this test (the app's broker is the embedded one by default)."""
    from kombu import pools

    from config.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def use(url, options):
        pools.reset()  # kombu keeps a pool per broker URL for the whole process
        app.conf.broker_url, app.conf.broker_transport_options = url, options
        app._pool = None
        app.amqp._producer_pool = None

    use(redis_url, {"visibility_timeout": 3600})
    yield redis_url
    use(*saved)


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_imports_the_upload_in_the_background(
    client, researcher, media_root, redis_broker, start_worker
):
    worker = start_worker(worker_env(redis_broker, media_root), queues="cpu")
    client.force_login(researcher)
    response = client.post(
        reverse("admin:study_dataset_import_zip"), {"name": "zipped", "archive": good_zip(5)}
    )
    assert response.status_code == 302
    job = wait_for(only_job())
    assert (job.status, job.files_done, job.files_total) == (ImportJob.DONE, 5, 5), job.error
    assert SourceImage.objects.filter(dataset__name="zipped").count() == 5
    assert job.archive == "" and not list((media_root / "imports").iterdir())
    assert "study.datasets.tasks.run_import" in worker.log.read_text()
    html = client.get(response.url).content.decode()
    assert "5 files imported into dataset zipped." in html
