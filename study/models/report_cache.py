"""The live report of a campaign as last computed, in the database so that every web process and
worker shares it, and the flag by which arriving votes ask a worker to compute it again.

The vote path pays one conditional UPDATE for it (:meth:`ReportCacheManager.votes_arrived`); the
report itself is computed on the ``cpu`` queue (study.reports.tasks) and read by the live page
and its polls (study.reports.live), which never wait for an analysis longer than their budget.
"""

import logging
import threading
from datetime import timedelta

from django.db import connection, models, transaction
from django.utils import timezone

log = logging.getLogger(__name__)

REFRESH_TASK = "study.reports.tasks.refresh_report"
# A request older than this with no computation started: its message is presumed lost (a worker
# down, a broker restarted), and the next vote or page view asks again.
REQUEST_STALE = timedelta(seconds=60)


class ReportCacheManager(models.Manager):
    def votes_arrived(self, campaign_id):
        """Ask for the campaign's report to be computed again: call once after votes were stored
        (in or out of a transaction). Throttled, not delayed: the first vote since the last
        computation started sets the flag and publishes one task on commit, which a free worker
        starts at once; the votes after it, until the worker claims the request, each cost one
        UPDATE that matches no row, and those that arrive while it computes set the flag once
        more, for one computation after it (study.reports.live.refresh). A burst of votes thus
        costs at most two computations: its first vote's, and one for the rest. With eager
        Celery (a demo without a worker, the tests) there is no worker to ask and this costs
        nothing: the page computes on demand."""
        if _eager():
            return False
        now = timezone.now()
        due = models.Q(requested_at__isnull=True) | models.Q(requested_at__lt=now - REQUEST_STALE)
        asked = bool(self.filter(due, pk=campaign_id).update(requested_at=now))
        if asked:
            _HAVE_ROW.add(campaign_id)
        elif campaign_id not in _HAVE_ROW:
            # Once per process and campaign: the campaign's first vote creates its row.
            asked = self.get_or_create(pk=campaign_id, defaults={"requested_at": now})[1]
            _HAVE_ROW.add(campaign_id)
        if asked:
            # Published from a thread of its own: a broker that is down or slow to refuse a
            # connection must never hold up the vote's answer (rating needs no broker).
            self.publish_on_commit(campaign_id)
        return asked

    def flag_in_vote(self, campaign_id, now):
        """The params by which the vote's own statement sets the request flag (PostgreSQL:
        study.models.session._vote_and_flag_sql): ``(now, campaign, stale limit)``, the same
        condition as `votes_arrived`. None where the vote must call `votes_arrived` instead:
        another database, eager Celery, or a campaign whose row this process has not seen yet
        (that call makes it)."""
        if connection.vendor != "postgresql" or campaign_id not in _HAVE_ROW or _eager():
            return None
        adapt = connection.ops.adapt_datetimefield_value
        return (adapt(now), campaign_id, adapt(now - REQUEST_STALE))

    def publish_on_commit(self, campaign_id):
        """After the flag was set: one refresh task, published once the vote is committed."""
        transaction.on_commit(lambda: _publish_in_background(campaign_id))


def _publish_in_background(campaign_id):
    threading.Thread(target=publish_refresh, args=(campaign_id,), daemon=True).start()


# Campaigns whose row this process has seen: an UPDATE that matched nothing then means "already
# asked", and costs no second query.
_HAVE_ROW = set()


def publish_refresh(campaign_id):
    """Publish the report's refresh task by name (the models know nothing of study.reports);
    with eager Celery there is no worker to take it, so nothing is sent."""
    from celery import current_app

    if _eager():
        return False
    try:
        # No retries: a broker outage must never hold up the vote that asked (the flag stays
        # set, and the next vote or page view after REQUEST_STALE asks again).
        current_app.send_task(REFRESH_TASK, args=[campaign_id], retry=False)
    except Exception as exc:
        log.warning("cannot ask for the report of campaign %s: %s", campaign_id, exc)
        return False
    return True


def _eager():
    from celery import current_app

    return bool(current_app.conf.task_always_eager)


class ReportCache(models.Model):
    """One campaign's report (the live page's tables and figures) and what each reflects."""

    campaign = models.OneToOneField(
        "study.Campaign", primary_key=True, on_delete=models.CASCADE, related_name="report_cache"
    )
    # study.reports.page.report_version of the votes it was computed from (read in the same
    # snapshot), and what that version counts.
    version = models.CharField(max_length=100, blank=True)
    n_votes = models.PositiveIntegerField(default=0, help_text="votes in the analysis frame")
    last_vote_at = models.DateTimeField(null=True, blank=True)
    # The page's context (sections, manifest, warnings) and figures (inline SVG), or why there
    # is no report yet.
    body = models.JSONField(null=True, blank=True)
    figures = models.JSONField(null=True, blank=True)
    # The figures are drawn after the tables are stored (study.reports.live.refresh): the
    # version and vote count they reflect, behind the tables' for the moment they are drawn.
    figures_version = models.CharField(max_length=100, blank=True)
    figures_n_votes = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.FloatField(default=0.0)
    computations = models.PositiveIntegerField(default=0)
    # The request flag (votes arrived since the last computation started) and the running
    # computation's claim (a lease: a worker killed mid-way does not block the next one).
    requested_at = models.DateTimeField(null=True, blank=True)
    running_since = models.DateTimeField(null=True, blank=True)

    objects = ReportCacheManager()

    class Meta:
        verbose_name = "live report cache"

    def __str__(self):
        return f"report of campaign {self.campaign_id} as of {self.n_votes} votes"
