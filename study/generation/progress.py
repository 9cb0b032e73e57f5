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
    metrics_waiting: dict = field(default_factory=dict)  # metric -> made candidates waiting
    metrics_text: str = ""  # e.g. "8 candidates still wait for gmsd" ("" when none waits)

    @property
    def remaining(self):
        return self.counts[Candidate.QUEUED] + self.counts[Candidate.RUNNING]

    @property
    def idle(self) -> bool:
        """Candidates are queued, no worker holds one, and nothing moved for three leases (with
        the defaults, longer than the reconciler takes to publish lost messages again)."""
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

    @property
    def settled(self) -> bool:
        """Nothing left for a worker: every candidate made, failed or withdrawn, and no made
        one waits for a metric. The campaign page stops following then."""
        return not self.remaining and not self.metrics_waiting

    def eta_text(self) -> str:
        """The time left, in words: "-" when nothing remains, and why it is unknown otherwise."""
        if not self.remaining:
            return "-"
        if self.stalled:
            return "unknown while stalled"  # the rate so far would promise a time nothing keeps
        if self.eta_seconds is None:
            return "known once the first candidate is made"
        return duration(self.eta_seconds)

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
            text[:1].upper() + text[1:] + ". The workers' reconciler queues them again by itself "
            f"within about {self.heal_minutes()} min; if it does not, check that a worker runs "
            "with its beat (`celery -A config worker -B`, or the beat service), or press "
            "Generate, which queues every waiting and abandoned candidate again at once."
        )

    @staticmethod
    def heal_minutes():
        """How long the reconciler may take to queue a stalled candidate again, in minutes."""
        seconds = (
            max(settings.SRMOS_GENERATION_LEASE, settings.SRMOS_REQUEUE_AFTER)
            + settings.SRMOS_RECONCILE_INTERVAL
        )
        return max(1, round(seconds / 60))

    def ready_text(self) -> str:
        """What a made campaign still waits for, e.g. "all 9 candidates are made; 8 candidates
        still wait for gmsd" ("" while candidates remain or nothing waits)."""
        if self.remaining or not self.metrics_text:
            return ""
        return (
            f"All {self.total} candidates are made; {self.metrics_text} (a CPU worker computes "
            "them)."
        )


def duration(seconds):
    """Seconds for a page: "7.8 s", "42 s", "3 min 05 s", "1 h 02 min" ("-" for None)."""
    if seconds is None:
        return "-"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def generation_report(campaign, max_failures=20):
    """Counts by state, time per method, an ETA, stalls, metrics still waiting and the first
    failures: five queries, and one per campaign metric."""
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
        if report.stalled:
            report.eta_seconds = None  # the rate so far says nothing while nothing moves
    if campaign.metrics:
        report.metrics_waiting = campaign.metrics_waiting()
        report.metrics_text = campaign.metrics_waiting_text(report.metrics_waiting)
    report.failures = list(
        campaign.candidates.filter(status=Candidate.FAILED)
        .values_list("image__dataset__name", "image__name", "method__slug", "error")
        .order_by("pk")[:max_failures]
    )
    return report
