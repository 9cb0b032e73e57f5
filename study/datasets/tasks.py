"""Celery tasks for the admin's imports. They take the job's primary key, re-read the row and
return quietly when there is nothing to do.

An ImportJob row is the job: queued -> running -> done / failed, claimed and settled as
`study.models.jobs` says. A task delivered twice (`acks_late`) imports once and the second
delivery is a no-op. A row running for longer than a task may live lost its worker, so it can be
claimed again. Progress and the outcome are written only under the claim's token, and the uploaded
zip is deleted only once the outcome is on the row.
"""

import logging
from dataclasses import asdict

from celery import shared_task
from django.core.files.storage import default_storage
from django.utils import timezone

from study.datasets.importing import ImportFailed, import_zip
from study.datasets.results import import_results_zip
from study.models import ImportJob
from study.models.jobs import new_token

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
        report = _run(job, progress)
    except ImportFailed as exc:
        _settle(job, token, report=exc.report, error=_bad_files(exc.report))
    except ValueError as exc:
        _settle(job, token, error=str(exc))
    except Exception as exc:
        # Recorded, not raised: the researcher's page must say why, and a retry of the same zip
        # would fail the same way.
        log.exception("import job %s failed", job_id)
        _settle(job, token, error=f"{type(exc).__name__}: {exc}")
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
