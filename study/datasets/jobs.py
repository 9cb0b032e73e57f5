"""What the admin's import buttons start, and how an import's page says where it stands.

The upload is stored once (`imports/<job id>.zip`) next to a new ImportJob row, and the task is
published once that transaction commits. With eager Celery (the tests, a demo without a worker)
the import runs at once, in the request. ORM and storage only: the web process imports this.
"""

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from study.datasets import tasks
from study.datasets.importing import removing_files_on_failure
from study.models import ImportJob

# A queued import nobody took for this long is worth a word: the worker may be down.
STALL_SECONDS = 60


def start_import(kind, upload, parameters, user):
    """Store the uploaded zip and queue its import; returns the ImportJob."""
    with removing_files_on_failure() as written, transaction.atomic():
        job = ImportJob.objects.create(
            kind=kind,
            parameters=parameters,
            original_name=(getattr(upload, "name", "") or "")[:255],
            created_by=user,
        )
        job.archive = default_storage.save(f"imports/{job.pk}.zip", upload)
        written.append(job.archive)
        job.save(update_fields=["archive"])
        transaction.on_commit(lambda: tasks.run_import.delay(job.pk))
    job.refresh_from_db()
    return job


def run_again(job):
    """Publish the task again for a job still queued or abandoned by its worker (a broker that
    lost the message, a worker killed mid-import). Returns True when a task was published."""
    with transaction.atomic():
        again = (
            ImportJob.objects.filter(pk=job.pk)
            .claimable()
            .exclude(archive="")
            .update(status=ImportJob.QUEUED, claim="", queued_at=timezone.now())
        )
        if again:
            transaction.on_commit(lambda: tasks.run_import.delay(job.pk))
    job.refresh_from_db()
    return bool(again)


def stall_message(job, now=None):
    """What the researcher should know and do when the import does not move ("" when it does)."""
    now = now or timezone.now()
    if job.status == ImportJob.QUEUED:
        waited = (now - job.queued_at).total_seconds()
        if waited <= STALL_SECONDS:
            return ""
        return (
            f"No worker has taken this import for {_minutes(waited)}. It waits behind any "
            "generation queued for the cpu queue; a lost message is published again by the "
            "workers' reconciler within about a minute. If nothing moves, check that a worker "
            "is running for the cpu queue with its beat (`celery -A config worker -Q cpu -B`, "
            "or the beat service), or press Run again. The zip is kept until then."
        )
    if job.is_abandoned(now):
        return (
            "The worker stopped mid-import (killed, or out of memory): its heartbeat stopped "
            "and it reported nothing. The zip is kept: the workers' reconciler queues the import "
            "again by itself, or press Run again once a worker is running. "
            "Nothing is half-imported: a dataset or method either has all the files or none."
        )
    return ""


def _minutes(seconds):
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def job_status(job):
    """The job page's poll: where the import stands, as JSON-ready values."""
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "files_done": job.files_done,
        "files_total": job.files_total,
        "percent": job.percent,
        "finished": job.finished,
        "summary": job.summary(),
        "stall": stall_message(job),
    }
