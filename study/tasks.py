"""Celery tasks. They take primary keys, re-read rows and return quietly when there is nothing to do."""

import logging
import traceback

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from study.models import Campaign, Candidate, Method

log = logging.getLogger(__name__)


def enqueue_candidates(rows):
    """Send one task per (candidate_pk, method_kind), networks to the gpu queue."""
    for pk, kind in rows:
        queue = "gpu" if kind == Method.NETWORK else "cpu"
        generate_candidate.apply_async(args=[pk], queue=queue)


@shared_task(acks_late=True)
def generate_candidate(candidate_id):
    from study.generation import render_candidate

    # The claim: of all workers a (re)delivered task reaches, only one flips queued -> running.
    claimed = Candidate.objects.filter(pk=candidate_id, status=Candidate.QUEUED).update(
        status=Candidate.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return
    candidate = Candidate.objects.select_related("campaign", "image", "method").get(pk=candidate_id)
    try:
        result = render_candidate(candidate)
    except Exception as exc:
        log.exception("candidate %s failed", candidate_id)
        Candidate.objects.filter(pk=candidate_id).update(
            status=Candidate.FAILED,
            error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=5)}",
            finished_at=timezone.now(),
        )
        return
    Candidate.objects.filter(pk=candidate_id, status=Candidate.RUNNING).update(
        status=Candidate.DONE,
        file=result.path,
        width=result.width,
        height=result.height,
        psnr=result.psnr,
        ssim=result.ssim,
        error="",
        finished_at=timezone.now(),
    )
    Campaign.objects.get(pk=candidate.campaign_id).update_generation_status()
