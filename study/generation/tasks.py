"""Celery tasks. They take primary keys, re-read rows and return quietly when there is nothing to do.

A candidate row is its own job row: queued -> running -> done / failed (cancelled when the
researcher withdraws it), claimed, leased and settled as `study.models.jobs` says. The claim also
accepts a `running` row whose lease ran out, and a heartbeat thread renews the lease while the
work runs. So a task redelivered after its worker was killed (`acks_late`: the broker hands the
unacked message to another worker) takes the candidate over, and a task delivered twice while the
first worker is alive waits for it (a bounded retry) instead of making the image a second time.
A model registration is a job row too (queued -> running -> valid / refused), checked here
under the same kind of lease. What a dead worker or a lost message leaves behind is queued again
by the reconciler (`study.generation.reconcile`, run by Celery beat).

Which worker runs which task is decided in one place, `config.celery.route`.
"""

import logging
import re
import traceback

from celery import shared_task
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from PIL import UnidentifiedImageError

from sr_models.atomic import DiskFull
from study.models import Campaign, Candidate, Method
from study.models.jobs import heartbeat, new_token
from study.models.networks import ModelRegistration

log = logging.getLogger(__name__)


class CandidateBusy(Exception):
    """Another worker holds this candidate's lease: try again once the lease could have expired."""


# Above this many candidates the web request hands the publishing to a worker (in chunks), so
# that starting a 1,000-candidate campaign returns at once: a publish costs ~1-2 ms of CPU.
FAN_OUT_ABOVE = 50
FAN_OUT_CHUNK = 250


def enqueue_candidates(rows):
    """Send one task per (candidate_pk, method_kind); config.celery routes each by the kind."""
    rows = [(pk, kind) for pk, kind in rows]
    if len(rows) <= FAN_OUT_ABOVE:
        publish_candidates(rows)
        return
    for start in range(0, len(rows), FAN_OUT_CHUNK):
        publish_candidates.delay(rows[start : start + FAN_OUT_CHUNK])


# Named as before the move to study.generation, so messages already queued still run.
@shared_task(name="study.tasks.publish_candidates", acks_late=True)
def publish_candidates(rows):
    # Delivered twice, it sends duplicates, which the claim turns into no-ops.
    for pk, kind in rows:
        generate_candidate.delay(pk, method_kind=kind)


def _batch_mates(candidate, limit):
    """Queued candidates that can share this one's network pass (same method, same HR size)."""
    if limit <= 1 or candidate.method.kind != Method.NETWORK:
        return []
    return list(
        Candidate.objects.filter(
            campaign_id=candidate.campaign_id,
            method_id=candidate.method_id,
            status=Candidate.QUEUED,
            image__width=candidate.image.width,
            image__height=candidate.image.height,
        )
        .exclude(pk=candidate.pk)
        .order_by("pk")
        .values_list("pk", flat=True)[: limit - 1]
    )


def _max_busy_retries():
    # A live attempt cannot outlast the hard time limit, so this many lease-long waits suffice.
    return settings.CELERY_TASK_TIME_LIMIT // settings.SRMOS_GENERATION_LEASE + 5


@shared_task(
    name="study.tasks.generate_candidate",
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    max_retries=_max_busy_retries(),
)
def generate_candidate(self, candidate_id, method_kind=None):
    """Make a candidate, and up to SRMOS_GPU_BATCH queued ones that can share its network pass.

    `method_kind` only routes the message (config.celery.route); the row says what to make.
    """
    # Imported here, not at the top: rendering pulls in torch, which only workers load; the web
    # process imports this module to publish tasks.
    from study.generation.render import render_candidates

    token = new_token()
    if not Candidate.objects.filter(pk=candidate_id).claim(token):
        row = Candidate.objects.filter(pk=candidate_id).values("status", "lease_expires").first()
        if row is None or row["status"] != Candidate.RUNNING:
            return  # gone, done, failed or cancelled: nothing to do
        wait = (
            (row["lease_expires"] - timezone.now()).total_seconds() if row["lease_expires"] else 0
        )
        raise self.retry(
            exc=CandidateBusy(f"candidate {candidate_id} is held by another worker"),
            countdown=max(wait, 0) + 1,
            max_retries=_max_busy_retries(),
        )
    candidate = Candidate.objects.select_related("campaign", "image", "method").get(pk=candidate_id)
    mates = _batch_mates(candidate, settings.SRMOS_GPU_BATCH)
    if mates:
        Candidate.objects.filter(pk__in=mates).claim(token)
    batch = list(
        Candidate.objects.held(token).select_related("campaign", "image", "method").order_by("pk")
    )
    with heartbeat(Candidate, token):
        results = render_candidates(batch)
    for item, result in zip(batch, results, strict=True):
        _record(item.pk, token, result)
    made = [
        item.pk
        for item, result in zip(batch, results, strict=True)
        if not isinstance(result, Exception)
    ]
    if made and candidate.method.kind == Method.NETWORK and candidate.campaign.metrics:
        # The metric panel is CPU work: a CPU worker does it, not the GPU one.
        queue_measuring(made)
    Campaign.objects.get(pk=candidate.campaign_id).update_generation_status()


def queue_measuring(candidate_ids):
    """Publish the metric task for made candidates. The images are made already, so a broker
    that is down now costs only a delay: the reconciler queues the metrics again (the
    campaign stays "generating" until they are computed)."""
    Candidate.objects.filter(pk__in=candidate_ids).update(metrics_queued_at=timezone.now())
    try:
        measure_candidates.delay(candidate_ids)
    except BrokerError as exc:
        log.warning(
            "metrics of candidates %s not queued (%s): the reconciler will", candidate_ids, exc
        )


# An object's default repr ("<_io.BytesIO object at 0x7f35dd4f8860>"): noise on a page.
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def failure_sentence(exc, doing="Making this image"):
    """What went wrong, in words, for the first line the campaign page shows; the exception as
    raised and its trace follow on the next lines (the candidate's page shows them)."""
    said = _OBJECT_REPR.sub("a file", " ".join(str(exc).split()))
    if isinstance(exc, DiskFull):
        return said  # already a sentence for the person who must act
    if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__:
        return (
            f"{doing} ran out of memory on its worker: press Retry failed on a worker with more "
            "memory, or use a smaller batch or tile size for this method."
        )
    if isinstance(exc, UnidentifiedImageError):
        return (
            f"{doing} failed: a stored image is not a readable PNG, JPEG or BMP file; import "
            "the dataset again."
        )
    if isinstance(exc, FileNotFoundError):
        return (
            f"{doing} failed: a file it needs is missing from storage"
            f"{f' ({exc.filename})' if exc.filename else ''}; import the dataset or register "
            "the model again, then press Retry failed."
        )
    return f"{doing} failed: {said or type(exc).__name__}"


def _record(candidate_id, token, result):
    # Settled under our claim: an attempt that lost its lease to another worker writes nothing.
    mine = Candidate.objects.filter(pk=candidate_id)
    if isinstance(result, Exception):
        log.error("candidate %s failed: %s", candidate_id, result)
        trace = "".join(traceback.format_exception(result, limit=5))
        error = f"{failure_sentence(result)}\n\n{trace}"
        mine.settle(token, Candidate.FAILED, error=error)
        return
    mine.settle(
        token,
        Candidate.DONE,
        file=result.path,
        width=result.width,
        height=result.height,
        psnr=result.psnr,
        ssim=result.ssim,
        metrics=result.metrics,
        metric_notes=result.metric_notes,
        seconds=result.seconds,
        notes=result.notes,
        error="",
    )


# Errors worth trying again: the database or the broker went away for a moment.
TRANSIENT = (OperationalError, InterfaceError, BrokerError)


# The registered name stays: messages queued by an older release must still find the task.
@shared_task(
    name="study.tasks.compute_metrics",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def measure_candidates(candidate_ids):
    """Compute the campaign's metrics that made candidates lack (a metric added afterwards),
    from their stored images; a second delivery finds nothing missing and does nothing.

    A database or broker outage is retried with backoff; one that outlasts the retries leaves
    the metrics without value or reason, and the reconciler queues them again."""
    from study.generation.render import measure_stored  # torch: workers only

    for candidate in Candidate.objects.filter(pk__in=candidate_ids, status=Candidate.DONE):
        missing = candidate.missing_metrics()
        if not missing:
            continue
        try:
            values, notes = measure_stored(candidate, missing)
        except Exception as exc:  # a missing or unreadable file: say so per metric
            note = failure_sentence(exc, "Computing it")
            values, notes = {}, {name: note for name in missing}
        with transaction.atomic():
            locked = Candidate.objects.select_for_update().get(pk=candidate.pk)
            locked.metrics = {**locked.metrics, **values}
            locked.metric_notes = {
                **{k: v for k, v in locked.metric_notes.items() if k not in values},
                **notes,
            }
            locked.save(update_fields=["metrics", "metric_notes"])
    # The live report's cache key: a metric computed after the votes changes the report.
    campaigns = Candidate.objects.filter(pk__in=candidate_ids).values("campaign_id")
    Campaign.objects.filter(pk__in=campaigns).update(metrics_changed_at=timezone.now())
    # A generating campaign is ready once its candidates and their metrics are complete.
    for campaign in Campaign.objects.filter(pk__in=campaigns, status=Campaign.GENERATING):
        campaign.update_generation_status()


MAX_ATTEMPTS = 3  # a model that kills its worker would kill the next one too


@shared_task(name="study.tasks.validate_model", acks_late=True)
def validate_model(registration_id):
    """Load a registered model file, run it on small inputs, and create its method or refuse it
    (study.generation.registering says how the row comes to be queued)."""
    token = new_token()
    if not ModelRegistration.objects.filter(pk=registration_id).claim(token):
        return  # gone, settled, or being validated by a live worker
    registration = ModelRegistration.objects.get(pk=registration_id)
    if registration.attempts > MAX_ATTEMPTS:
        refusal = (
            f"the check stopped its worker {registration.attempts - 1} times (out of memory, or "
            "over the task's time limit): try a smaller model, or raise SRMOS_MODEL_MEMORY_MB "
            "and the workers' memory"
        )
        _settle_registration(registration, token, None, refusal)
        return
    from study.generation import networks  # torch: workers only

    try:
        with heartbeat(ModelRegistration, token):
            findings, refusal = networks.check(registration)
    except Exception as exc:  # a model's own code can raise anything: refuse it, say what
        log.exception("validating model %s", registration.slug)
        said = failure_sentence(exc, "Loading or running it")
        findings, refusal = None, f"{said}\nDetail: {type(exc).__name__}"
    _settle_registration(registration, token, findings, refusal)


def _settle_registration(registration, token, findings, refusal):
    """Write the worker's verdict under its claim: the method and a valid row in one
    transaction (nothing is ever half-registered), or the refusal."""
    mine = ModelRegistration.objects.filter(pk=registration.pk)
    if refusal is None:
        try:
            with transaction.atomic():
                method = Method.objects.create(
                    slug=registration.slug,
                    name=registration.name or registration.slug,
                    kind=Method.NETWORK,
                    description=registration.description,
                    parameters={
                        "model_sha256": registration.sha256,
                        "half": bool(registration.half_requested and findings["half_ok"]),
                    },
                )
                if not mine.settle(token, ModelRegistration.VALID, method=method, **findings):
                    raise _Lost
            return
        except _Lost:
            return  # another worker took the row over; it settles it
        except IntegrityError:
            refusal = f"a method named {registration.slug!r} was created meanwhile; register again"
    if mine.settle(token, ModelRegistration.REFUSED, error=refusal):
        _discard_refused_file(registration.file)


def _discard_refused_file(path):
    """Delete a refused model file from storage, unless a registration that may still pass or
    has passed holds the same content (stored once per sha256). A refused file is a file no
    worker should load again, and an upload of untrusted bytes should not linger."""
    others = ModelRegistration.objects.filter(file=path).exclude(status=ModelRegistration.REFUSED)
    if not others.exists():
        default_storage.delete(path)


class _Lost(Exception):
    pass


@shared_task(name="study.tasks.reconcile_jobs", acks_late=False)
def reconcile_jobs():
    """Celery beat's periodic task (SRMOS_RECONCILE_INTERVAL): queue again what a dead worker or
    a lost message left behind (study.generation.reconcile)."""
    from study.generation.reconcile import reconcile

    try:
        reconcile()
    except TRANSIENT as exc:  # the next run, one interval later, tries again
        log.warning("reconciler skipped this run: %s: %s", type(exc).__name__, exc)
