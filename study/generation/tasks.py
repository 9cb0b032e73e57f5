"""Celery tasks. They take primary keys, re-read rows and return quietly when there is nothing to do.

A candidate row is its own job row: queued -> running -> done / failed (cancelled when the
researcher withdraws it). A worker claims it with a conditional update that also accepts a
`running` row whose lease ran out, and renews the lease from a heartbeat thread while it works.
So a task redelivered after its worker was killed (`acks_late`: the broker hands the unacked
message to another worker) takes the candidate over, and a task delivered twice while the first
worker is alive waits for it (a bounded retry) instead of making the image a second time.
"""

import logging
import threading
import traceback
import uuid
from contextlib import contextmanager
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from study.generation import registering
from study.models import Campaign, Candidate, Method
from study.models.networks import ModelRegistration

log = logging.getLogger(__name__)


class CandidateBusy(Exception):
    """Another worker holds this candidate's lease: try again once the lease could have expired."""


# Above this many candidates the web request hands the publishing to a worker (in chunks), so
# that starting a 1,000-candidate campaign returns at once: a publish costs ~1-2 ms of CPU.
FAN_OUT_ABOVE = 50
FAN_OUT_CHUNK = 250


def enqueue_candidates(rows):
    """Send one task per (candidate_pk, method_kind), networks to the gpu queue."""
    rows = [(pk, kind) for pk, kind in rows]
    if len(rows) <= FAN_OUT_ABOVE:
        publish_candidates(rows)
        return
    for start in range(0, len(rows), FAN_OUT_CHUNK):
        publish_candidates.apply_async(args=[rows[start : start + FAN_OUT_CHUNK]], queue="cpu")


# Named as before the move to study.generation, so messages already queued still run.
@shared_task(name="study.tasks.publish_candidates", acks_late=True)
def publish_candidates(rows):
    # Delivered twice, it sends duplicates, which the claim turns into no-ops.
    for pk, kind in rows:
        queue = "gpu" if kind == Method.NETWORK else "cpu"
        generate_candidate.apply_async(args=[pk], queue=queue)


def _lease():
    return timedelta(seconds=settings.SRMOS_GENERATION_LEASE)


def claim(candidate_ids, token):
    """Claim the given candidates that are queued or abandoned; returns how many were claimed."""
    now = timezone.now()
    claimable = Q(status=Candidate.QUEUED) | Candidate.abandoned(now)
    return Candidate.objects.filter(claimable, pk__in=candidate_ids).update(
        status=Candidate.RUNNING,
        claim=token,
        lease_expires=now + _lease(),
        started_at=now,
        attempts=F("attempts") + 1,
    )


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


@contextmanager
def heartbeat(token):
    """Renew the lease of the candidates claimed with `token` until the block ends."""
    stop = threading.Event()
    interval = settings.SRMOS_GENERATION_LEASE / 3

    def beat():
        try:
            while not stop.wait(interval):
                Candidate.objects.filter(claim=token, status=Candidate.RUNNING).update(
                    lease_expires=timezone.now() + _lease()
                )
        except Exception:
            log.exception("heartbeat for claim %s stopped", token)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"lease-{token[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


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
def generate_candidate(self, candidate_id):
    # Imported here, not at the top: rendering pulls in torch, which only workers load; the web
    # process imports this module to publish tasks.
    from study.generation.render import render_candidates

    token = uuid.uuid4().hex
    if not claim([candidate_id], token):
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
        claim(mates, token)
    batch = list(
        Candidate.objects.filter(claim=token, status=Candidate.RUNNING)
        .select_related("campaign", "image", "method")
        .order_by("pk")
    )
    with heartbeat(token):
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
        compute_metrics.apply_async(args=[made], queue="cpu")
    Campaign.objects.get(pk=candidate.campaign_id).update_generation_status()


def _record(candidate_id, token, result):
    # Conditional on our claim: an attempt that lost its lease to another worker writes nothing.
    mine = Candidate.objects.filter(pk=candidate_id, claim=token, status=Candidate.RUNNING)
    if isinstance(result, Exception):
        log.error("candidate %s failed: %s", candidate_id, result)
        trace = "".join(traceback.format_exception(result, limit=5))
        mine.update(
            status=Candidate.FAILED,
            error=f"{type(result).__name__}: {result}\n\n{trace}",
            finished_at=timezone.now(),
            lease_expires=None,
        )
        return
    mine.update(
        status=Candidate.DONE,
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
        finished_at=timezone.now(),
        lease_expires=None,
    )


@shared_task(name="study.tasks.compute_metrics", acks_late=True)
def compute_metrics(candidate_ids):
    """Compute the campaign's metrics that made candidates lack (a metric added afterwards),
    from their stored images; a second delivery finds nothing missing and does nothing."""
    from study.generation.render import measure_stored  # torch: workers only

    for candidate in Candidate.objects.filter(pk__in=candidate_ids, status=Candidate.DONE):
        missing = candidate.missing_metrics()
        if not missing:
            continue
        try:
            values, notes = measure_stored(candidate, missing)
        except Exception as exc:  # a missing or unreadable file: say so per metric
            values, notes = {}, {name: f"{type(exc).__name__}: {exc}" for name in missing}
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


@shared_task(name="study.tasks.validate_model", acks_late=True)
def validate_model(registration_id):
    """Load a registered model file, run it on small inputs, and create its method or refuse it
    (study.generation.registering says how the row is claimed and settled)."""
    token = uuid.uuid4().hex
    if not registering.claim(registration_id, token):
        return  # gone, settled, or being validated by a live worker
    registration = ModelRegistration.objects.get(pk=registration_id)
    if registration.attempts > registering.MAX_ATTEMPTS:
        refusal = (
            f"the check stopped its worker {registration.attempts - 1} times (out of memory, or "
            "over the task's time limit): try a smaller model, or raise SRMOS_MODEL_MEMORY_MB "
            "and the workers' memory"
        )
        registering.settle(registration, token, None, refusal)
        return
    from study.generation import networks  # torch: workers only

    try:
        findings, refusal = networks.check(registration)
    except Exception as exc:  # a model's own code can raise anything: refuse it, say what
        log.exception("validating model %s", registration.slug)
        findings, refusal = None, f"loading or running it failed: {type(exc).__name__}: {exc}"
    registering.settle(registration, token, findings, refusal)
