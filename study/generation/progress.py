"""How far a campaign's generation is: counts by state, time per method, an ETA and stalls.

ORM only (no torch), so the web process shows it without loading the workers' code.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Avg, Count, Max, Min, Q, Sum
from django.utils import timezone

from study.models import Candidate


@dataclass
class MethodTime:
    method: str
    done: int
    mean_seconds: float | None
    total_seconds: float | None


@dataclass
class GenerationReport:
    counts: dict
    total: int
    methods: list = field(default_factory=list)
    eta_seconds: float | None = None
    failures: list = field(default_factory=list)
    abandoned: int = 0  # running, but their worker stopped renewing the lease
    live: int = 0  # running with a live lease: a worker is on them
    idle_seconds: float | None = None  # since work was queued, started or finished last

    @property
    def remaining(self):
        return self.counts[Candidate.QUEUED] + self.counts[Candidate.RUNNING]

    @property
    def idle(self) -> bool:
        """Candidates are queued, no worker holds one, and nothing moved for three leases."""
        limit = 3 * settings.SRMOS_GENERATION_LEASE
        return (
            bool(self.counts[Candidate.QUEUED])
            and not self.live
            and self.idle_seconds is not None
            and self.idle_seconds > limit
        )

    @property
    def stalled(self) -> bool:
        return bool(self.remaining) and (self.abandoned > 0 or self.idle)

    def stall_message(self) -> str:
        """What the researcher should know and do about a stall ("" when there is none)."""
        parts = []
        if self.abandoned:
            parts.append(f"{self.abandoned} candidate(s) lost their worker (it stopped mid-task)")
        if self.idle:
            parts.append(
                f"no candidate has been taken for {self.idle_seconds / 60:.0f} min while "
                f"{self.counts[Candidate.QUEUED]} are queued"
            )
        if not parts:
            return ""
        text = "; ".join(parts)
        return (
            text[:1].upper() + text[1:] + ". Check that a worker is running (`celery -A config "
            "worker`), then press Generate: it queues every waiting and abandoned candidate again "
            "(a broker that lost their messages, such as the embedded one, needs this)."
        )


def generation_report(campaign, max_failures=20):
    """Counts by state, time per method, an ETA, stalls and the first failures: five queries."""
    counts = campaign.progress()
    report = GenerationReport(counts=counts, total=sum(counts.values()))
    rows = (
        campaign.candidates.filter(status=Candidate.DONE)
        .values("method__slug")
        .annotate(n=Count("id"), mean=Avg("seconds"), total=Sum("seconds"))
        .order_by("method__slug")
    )
    report.methods = [MethodTime(r["method__slug"], r["n"], r["mean"], r["total"]) for r in rows]
    if report.remaining and counts[Candidate.DONE]:
        # Observed throughput of all workers together since the first candidate started.
        span = campaign.candidates.filter(status=Candidate.DONE).aggregate(
            first=Min("started_at"), last=Max("finished_at")
        )
        if span["first"]:
            elapsed = max((timezone.now() - span["first"]).total_seconds(), 1e-3)
            report.eta_seconds = report.remaining * elapsed / counts[Candidate.DONE]
    if report.remaining:
        now = timezone.now()
        activity = campaign.candidates.aggregate(
            started=Max("started_at"),
            finished=Max("finished_at"),
            abandoned=Count("id", filter=Candidate.abandoned(now)),
            live=Count("id", filter=Q(status=Candidate.RUNNING, lease_expires__gte=now)),
        )
        report.abandoned, report.live = activity["abandoned"], activity["live"]
        moments = (activity["started"], activity["finished"], campaign.generation_queued_at)
        last = max((t for t in moments if t), default=None)
        if last is not None:
            report.idle_seconds = (now - last).total_seconds()
    report.failures = list(
        campaign.candidates.filter(status=Candidate.FAILED)
        .values_list("image__dataset__name", "image__name", "method__slug", "error")
        .order_by("pk")[:max_failures]
    )
    return report
