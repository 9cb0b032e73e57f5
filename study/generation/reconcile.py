"""The reconciler: jobs heal themselves after a worker dies or the broker loses its messages.

Celery beat runs `reconcile()` every SRMOS_RECONCILE_INTERVAL seconds (`config.settings`'s
CELERY_BEAT_SCHEDULE; `make demo` and `serve` embed beat in their worker, docker-compose runs a
beat service). Each run:

- puts candidates and registrations whose lease ran out (their worker died mid-task) back in the
  queue and publishes their task again;
- publishes again the queued candidates and registrations whose message was lost: the broker's
  queue for them is empty, and nothing was queued or taken for SRMOS_REQUEUE_AFTER seconds (a
  Redis restarted without persistence, say);
- queues the metrics of made candidates that have neither a value nor a reason for one (the
  metric task's message was lost, or an outage outlasted its retries);
- moves a generating campaign whose candidates and metrics are complete to ready (the last task
  may have died before saying so).

A message published twice is harmless: the claim (`study.models.jobs`) lets one attempt do the
work and turns the other into a no-op, so every job is still done exactly once. Imports are
reconciled by `study.datasets.tasks.reconcile_imports` (the datasets package is not imported
from here).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from study.generation import tasks
from study.generation.queue import METRIC_CHUNK
from study.models import Campaign, Candidate, Method
from study.models.jobs import waiting_messages
from study.models.networks import ModelRegistration

log = logging.getLogger(__name__)

# The broker queue of each kind of candidate (config.celery.route sends networks to the GPU).
QUEUES = {"gpu": Q(method__kind=Method.NETWORK), "cpu": ~Q(method__kind=Method.NETWORK)}


@dataclass
class Reconciled:
    """What one run queued again (the log line, and the tests' view of it)."""

    candidates_taken_over: int = 0
    candidates_republished: int = 0
    metrics_queued: int = 0
    registrations_queued: int = 0
    campaigns_ready: int = 0

    def __bool__(self):
        return any(vars(self).values())


def reconcile(now=None):
    """One run of the reconciler; returns what it queued again."""
    now = now or timezone.now()
    quiet_since = now - timedelta(seconds=settings.SRMOS_REQUEUE_AFTER)
    empty = _EmptyQueues()
    done = Reconciled(
        candidates_taken_over=take_over_candidates(now),
        candidates_republished=republish_lost_candidates(quiet_since, empty),
        metrics_queued=queue_lost_metrics(quiet_since, empty),
        registrations_queued=requeue_registrations(now, quiet_since, empty),
        campaigns_ready=settle_campaigns(),
    )
    if done:
        log.warning("reconciler queued again: %s", done)
    return done


class _EmptyQueues:
    """Whether a broker queue holds no message, asked once per run and only when needed."""

    def __init__(self):
        self.known = {}

    def __call__(self, queue):
        if queue not in self.known:
            self.known[queue] = waiting_messages(queue) == 0
        return self.known[queue]


def _generating():
    return Candidate.objects.filter(campaign__status=Campaign.GENERATING)


def take_over_candidates(now):
    """Running candidates whose worker stopped renewing the lease: queued and published again.
    Returns how many."""
    pks = _generating().requeue_abandoned(now)
    if pks:
        rows = Candidate.objects.filter(pk__in=pks)
        Campaign.objects.filter(pk__in=rows.values("campaign_id")).update(generation_queued_at=now)
        tasks.enqueue_candidates(rows.values_list("pk", "method__kind"))
    return len(pks)


def republish_lost_candidates(quiet_since, empty):
    """Queued candidates whose message was lost: publish them again. Returns how many.

    Lost means: their broker queue is empty, their campaign was not queued, and none of its
    candidates of that queue was taken, for SRMOS_REQUEUE_AFTER seconds. A long queue that a
    busy worker is still working through is left alone."""
    count = 0
    for queue, of_queue in QUEUES.items():
        queued = (
            _generating()
            .filter(of_queue, status=Candidate.QUEUED)
            .exclude(campaign__generation_queued_at__gte=quiet_since)
        )
        campaigns = set(queued.values_list("campaign_id", flat=True))
        if not campaigns:
            continue
        taken = (
            _generating()
            .filter(of_queue, campaign_id__in=campaigns, started_at__gte=quiet_since)
            .values_list("campaign_id", flat=True)
        )
        campaigns -= set(taken)
        if not campaigns or not empty(queue):
            continue
        rows = list(queued.filter(campaign_id__in=campaigns).values_list("pk", "method__kind"))
        Campaign.objects.filter(pk__in=campaigns).update(generation_queued_at=timezone.now())
        tasks.enqueue_candidates(rows)
        count += len(rows)
    return count


def queue_lost_metrics(quiet_since, empty):
    """Made candidates whose campaign metric has neither a value nor a reason, queued (or made)
    longer ago than SRMOS_REQUEUE_AFTER, while the CPU queue is empty: queue their metrics
    again. Returns how many candidates."""
    ids = []
    for campaign in Campaign.objects.exclude(metrics=[]).only("pk", "metrics"):
        waiting = (
            campaign.candidates.waiting_for_metrics(campaign.metrics)
            .filter(finished_at__lt=quiet_since)
            .filter(Q(metrics_queued_at__isnull=True) | Q(metrics_queued_at__lt=quiet_since))
        )
        ids += list(waiting.values_list("pk", flat=True))
    if not ids or not empty("cpu"):
        return 0
    for start in range(0, len(ids), METRIC_CHUNK):
        tasks.queue_measuring(ids[start : start + METRIC_CHUNK])
    return len(ids)


def requeue_registrations(now, quiet_since, empty):
    """Registrations whose worker died (lease run out), and queued ones whose message was lost
    (the GPU queue is empty, queued longer ago than SRMOS_REQUEUE_AFTER): their check is
    published again. Returns how many."""
    pks = ModelRegistration.objects.requeue_abandoned(now, queued_at=now)
    lost = ModelRegistration.objects.filter(
        status=ModelRegistration.QUEUED, queued_at__lt=quiet_since
    ).exclude(pk__in=pks)
    if lost.exists() and empty("gpu"):
        lost_pks = list(lost.values_list("pk", flat=True))
        ModelRegistration.objects.filter(pk__in=lost_pks).update(queued_at=now)
        pks += lost_pks
    for pk in pks:
        tasks.validate_model.delay(pk)
    return len(pks)


def settle_campaigns():
    """Generating campaigns whose candidates and metrics are complete become ready (the last
    worker may have died before it said so). Returns how many."""
    ready = 0
    unfinished = Candidate.objects.exclude(status=Candidate.DONE).values("campaign_id")
    for campaign in Campaign.objects.filter(status=Campaign.GENERATING).exclude(pk__in=unfinished):
        campaign.update_generation_status()
        campaign.refresh_from_db(fields=["status"])
        ready += campaign.status == Campaign.READY
    return ready
