"""Where a campaign's participants are: the funnel from an opened link to a completed session,
and how long sessions take. People only: previews and simulated sessions are left out."""

import statistics
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from study.models import Rater

# A session with no step for this long is counted as abandoned.
ABANDONED_AFTER = timedelta(hours=2)


@dataclass
class Funnel:
    opened: int = 0
    consented: int = 0
    failed_display: int = 0
    calibrated: int = 0
    rating: int = 0
    completed: int = 0
    abandoned: int = 0
    minutes: list = field(default_factory=list)  # completed sessions, consent to last vote

    @property
    def median_minutes(self):
        return statistics.median(self.minutes) if self.minutes else None

    @property
    def quartiles(self):
        """The middle half of session times (25th and 75th percentiles), or None."""
        if len(self.minutes) < 2:
            return None
        q = statistics.quantiles(self.minutes, n=4, method="inclusive")
        return q[0], q[2]

    def rows(self):
        """(stage, count, what it means) in the order a participant goes through them."""
        return [
            ("opened", self.opened, "opened their link"),
            ("consented", self.consented, "gave their consent"),
            ("failed display check", self.failed_display, "window too small, never passed"),
            ("calibrated", self.calibrated, "saw the calibration examples"),
            ("rating", self.rating, "have voted, not finished, active recently"),
            ("completed", self.completed, "rated every image"),
            ("abandoned", self.abandoned, f"no step for {_hours(ABANDONED_AFTER)} h, unfinished"),
        ]


def _hours(delta):
    return int(delta.total_seconds() // 3600)


def _failed_display(checks, passed_at):
    return passed_at is None and any(not c.get("fits") for c in checks)


def campaign_funnel(campaign, now=None):
    """The funnel of `campaign`'s sessions; two queries."""
    now = now or timezone.now()
    raters = (
        campaign.raters.exclude(platform__in=Rater.NOT_PEOPLE)
        .annotate(last_vote=Max("trials__answered_at"))
        .values(
            "opened_at",
            "consented_at",
            "display_checks",
            "display_ok_at",
            "calibrated_at",
            "started_at",
            "completed_at",
            "last_vote",
        )
    )
    funnel = Funnel()
    for r in raters:
        touched = [t for t in (r["opened_at"], r["consented_at"], r["last_vote"]) if t]
        funnel.opened += bool(touched)
        funnel.consented += r["consented_at"] is not None
        funnel.failed_display += _failed_display(r["display_checks"], r["display_ok_at"])
        funnel.calibrated += r["calibrated_at"] is not None
        if r["completed_at"]:
            funnel.completed += 1
            start = r["consented_at"] or r["started_at"]
            if start:
                funnel.minutes.append((r["completed_at"] - start).total_seconds() / 60)
        elif touched and now - max(touched) > ABANDONED_AFTER:
            funnel.abandoned += 1
        elif r["started_at"]:
            funnel.rating += 1
    return funnel
