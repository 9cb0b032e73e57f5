"""What the researcher's Generate, Retry and Cancel do: candidate rows change state here, and one
task per candidate is published once the transaction commits (`generation.tasks`).

No torch here: the web process imports this module, the workers render.
"""

from django.db import transaction
from django.utils import timezone

from study.generation import tasks
from study.models import Campaign, Candidate


def start_generation(campaign):
    """Create the campaign's missing candidates and queue every one not yet made.

    Returns the number of candidates queued: 0 for a ready campaign (all made). Raises
    ValueError, queueing nothing, for a live or closed campaign, whose candidates are final.
    """
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        refused = locked.refuse_generation()
        if refused:
            raise ValueError(refused)
        if locked.status not in (Campaign.DRAFT, Campaign.GENERATING):
            return 0
        Candidate.objects.bulk_create(locked.planned_candidates(), ignore_conflicts=True)
        locked.candidates.filter(status=Candidate.CANCELLED).update(status=Candidate.QUEUED)
        # A running candidate whose lease ran out lost its worker (and, on a broker without
        # redelivery, its message too): queue a task for it, which takes it over.
        queued = list(locked.candidates.claimable().values_list("pk", "method__kind"))
        if queued:
            locked.status = Campaign.GENERATING
            locked.generation_queued_at = timezone.now()
        locked.save(update_fields=["status", "generation_queued_at"])
        transaction.on_commit(lambda: tasks.enqueue_candidates(queued))
    campaign.refresh_from_db()
    campaign.update_generation_status()
    return len(queued)


def retry_failed(campaign):
    """Queue the failed candidates again; returns how many. Refused (ValueError) for a live or
    closed campaign."""
    refused = campaign.refuse_generation()
    if refused:
        raise ValueError(refused)
    with transaction.atomic():
        failed = campaign.candidates.filter(status=Candidate.FAILED)
        ids = list(failed.values_list("pk", "method__kind"))
        failed.update(status=Candidate.QUEUED, error="", started_at=None, finished_at=None)
        if ids:
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.READY).update(
                status=Campaign.GENERATING
            )
            Campaign.objects.filter(pk=campaign.pk).update(generation_queued_at=timezone.now())
        transaction.on_commit(lambda: tasks.enqueue_candidates(ids))
    return len(ids)


def requeue_abandoned(campaign):
    """Queue a task again for each running candidate whose worker stopped renewing its lease
    (a broker without redelivery lost its message). Returns how many. The reconciler
    (`study.generation.reconcile`) does this by itself; `generate_candidates --wait` does it
    too, for a deployment running no beat."""
    ids = list(campaign.candidates.filter(Candidate.abandoned()).values_list("pk", "method__kind"))
    if ids:
        tasks.enqueue_candidates(ids)
    return len(ids)


def cancel_generation(campaign):
    """Withdraw the queued candidates; running ones finish. Returns how many were withdrawn.

    Their tasks stay in the broker and return quietly (the claim needs `queued`); generating
    again queues them anew. Raises ValueError when the campaign is not generating.
    """
    campaign.refresh_from_db(fields=["status"])
    if campaign.status != Campaign.GENERATING:
        raise ValueError(
            f"Campaign {campaign.name} is {campaign.get_status_display().lower()}: nothing is "
            "being generated, so there is nothing to cancel."
        )
    with transaction.atomic():
        n = campaign.candidates.filter(status=Candidate.QUEUED).update(status=Candidate.CANCELLED)
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.GENERATING).update(
            status=Campaign.DRAFT
        )
    campaign.refresh_from_db()
    return n


METRIC_CHUNK = 20  # candidates per metrics task: a few seconds of CPU each


def queue_metrics(campaign):
    """Queue the campaign's metrics for its made candidates that lack a value for any (a metric
    added after generation, or one that failed). Images are not made again; any campaign
    status, live and closed included, since metrics change no image, vote or design. A queued
    metric's old failure note is cleared, so "no value, no note" reads as pending.

    Returns the number of candidates queued."""
    wanted = list(campaign.metrics)
    if not wanted:
        return 0
    rows = [
        c
        for c in campaign.candidates.filter(status=Candidate.DONE).only(
            "pk", "metrics", "metric_notes"
        )
        if not set(wanted) <= set(c.metrics or {})
    ]
    now = timezone.now()
    for c in rows:
        c.metric_notes = {k: v for k, v in (c.metric_notes or {}).items() if k not in wanted}
        c.metrics_queued_at = now  # the reconciler queues them again if the message is lost
    Candidate.objects.bulk_update(rows, ["metric_notes", "metrics_queued_at"], batch_size=500)
    ids = [c.pk for c in rows]
    for start in range(0, len(ids), METRIC_CHUNK):
        chunk = ids[start : start + METRIC_CHUNK]
        transaction.on_commit(lambda chunk=chunk: tasks.measure_candidates.delay(chunk))
    return len(ids)


def metrics_pending(campaign):
    """How many made candidates still wait for a queued metric (neither a value nor a note)."""
    wanted = list(campaign.metrics)
    rows = campaign.candidates.filter(status=Candidate.DONE).values_list("metrics", "metric_notes")
    return sum(
        1
        for values, notes in rows
        if any(m not in (values or {}) and m not in (notes or {}) for m in wanted)
    )


def metric_coverage(campaign):
    """{metric: (values, made candidates, first reason one is missing or "")} per campaign metric."""
    made = list(
        campaign.candidates.filter(status=Candidate.DONE).values_list("metrics", "metric_notes")
    )
    coverage = {}
    for name in campaign.metrics:
        have = sum(1 for values, _ in made if name in (values or {}))
        reasons = [
            notes[name]
            for values, notes in made
            if name not in (values or {}) and name in (notes or {})
        ]
        coverage[name] = (have, len(made), reasons[0] if reasons else "")
    return coverage
