"""Celery tasks for the admin's imports. They take the job's primary key, re-read the row and
return quietly when there is nothing to do.

An ImportJob row is the job: queued -> running -> done / failed, claimed and settled as
`study.models.jobs` says. A task delivered twice (`acks_late`) imports once and the second
delivery is a no-op. A row running for longer than a task may live lost its worker, so it can be
claimed again. Progress and the outcome are written only under the claim's token, and the uploaded
zip is deleted only once the outcome is on the row. `reconcile_imports` (Celery beat) publishes the
task again for an import whose worker died or whose message was lost.
"""

import logging
from dataclasses import asdict
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from sr_models.atomic import DiskFull
from study.datasets.importing import ImportFailed, decoder_detail, import_zip
from study.datasets.results import import_results_zip
from study.models import ImportJob
from study.models.jobs import heartbeat, new_token, waiting_messages

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_import(job_id):
    token = new_token()
    claimed = ImportJob.objects.filter(pk=job_id).claim(
        token, progress_at=timezone.now(), files_done=0, files_total=0
    )
    if not claimed:
        return  # gone, settled, or running on a live worker: nothing to do
    job = ImportJob.objects.get(pk=job_id)
    mine = ImportJob.objects.filter(pk=job_id).held(token)

    def progress(done, total):
        mine.update(files_done=done, files_total=total, progress_at=timezone.now())

    if not job.archive or not default_storage.exists(job.archive):
        _settle(job, token, error=f"the uploaded zip ({job.archive or 'none'}) is not in storage")
        return
    try:
        with heartbeat(ImportJob, token):
            report = _run(job, progress)
    except ImportFailed as exc:
        _settle(job, token, report=exc.report, error=_bad_files(exc.report))
    except ValueError as exc:
        _settle(job, token, error=str(exc))
    except Exception as exc:
        # Recorded, not raised: the researcher's page must say why, and a retry of the same zip
        # would fail the same way.
        log.exception("import job %s failed", job_id)
        _settle(job, token, error=_unexpected(exc))
    else:
        _settle(job, token, report=report)


def _run(job, progress):
    params = job.parameters
    with default_storage.open(job.archive) as upload:
        if job.kind == ImportJob.RESULTS:
            return import_results_zip(
                params["dataset"],
                params["method"],
                upload,
                skip_bad=params.get("skip_bad", False),
                lr_input=params.get("lr_input") or None,
                progress=progress,
            )
        return import_zip(
            params["dataset"],
            upload,
            skip_bad=params.get("skip_bad", False),
            description=params.get("description", ""),
            is_calibration=params.get("is_calibration", False),
            progress=progress,
        )


def _bad_files(report, shown=5):
    names = [f.name for f in report.errors]
    listed = ", ".join(names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )
    return (
        f"{len(names)} bad file{'s' if len(names) != 1 else ''} ({listed}); the report below says "
        "what is wrong with each. Upload again with “Skip bad” ticked to import the good files."
    )


def _unexpected(exc):
    """An error nobody foresaw, for the job's page: a sentence first, the exception under it."""
    if isinstance(exc, DiskFull):
        return str(exc)  # already says what to free and how to resume
    return (
        "The import stopped on an unexpected error and kept nothing. Run it again; if it fails "
        f"the same way, send this line to whoever runs the server.\n{decoder_detail(exc)}"
    )


def _settle(job, token, report=None, error=""):
    """Write the outcome under our claim; then, and only then, the zip can go."""
    settled = ImportJob.objects.filter(pk=job.pk).settle(
        token,
        ImportJob.FAILED if error else ImportJob.DONE,
        report=[asdict(f) for f in report.files] if report else [],
        error=error,
    )
    if not settled or not job.archive:
        return  # another worker took the job over: its outcome counts
    default_storage.delete(job.archive)
    ImportJob.objects.filter(pk=job.pk).update(archive="")


@shared_task(name="study.tasks.reconcile_imports", acks_late=False)
def reconcile_imports():
    """Celery beat's periodic task (SRMOS_RECONCILE_INTERVAL): publish the task again for an
    import whose worker died (running past the time limit) or whose message was lost (queued
    for SRMOS_REQUEUE_AFTER seconds while the CPU queue is empty). Returns how many; a
    duplicate message is a no-op (the claim), so each import still runs once."""
    try:
        return _reconcile_imports()
    except (OperationalError, InterfaceError, BrokerError) as exc:
        log.warning("import reconciler skipped this run: %s: %s", type(exc).__name__, exc)
        return 0


def _reconcile_imports():
    now = timezone.now()
    quiet_since = now - timedelta(seconds=settings.SRMOS_REQUEUE_AFTER)
    stuck = ImportJob.objects.filter(
        Q(status=ImportJob.QUEUED, queued_at__lt=quiet_since) | ImportJob.abandoned(now)
    ).exclude(archive="")
    pks = list(stuck.values_list("pk", flat=True))
    if not pks:
        return 0
    lost_only = not stuck.filter(ImportJob.abandoned(now)).exists()
    if lost_only and waiting_messages("cpu") != 0:
        return 0  # their messages may wait behind other work
    again = ImportJob.objects.filter(pk__in=pks).filter(
        Q(status=ImportJob.QUEUED) | ImportJob.abandoned(now)
    )
    again.update(status=ImportJob.QUEUED, claim="", queued_at=now)
    for pk in pks:
        run_import.delay(pk)
    log.warning("reconciler queued %d import(s) again", len(pks))
    return len(pks)
