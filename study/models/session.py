"""A rater's session: the trials in their seeded order, the votes, and the session's quality checks."""

import gc
import secrets
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from study.analysis import vote_flags
from study.models.campaign import Campaign, Candidate
from study.models.report_cache import ReportCache
from study.models.tokens import participant_key, rater_token

# Gold items: the anchors' expected scores (P.808 accepts a gold answer within +-1).
GOLD_EXPECTATIONS = {"hr": ">=4", "nearest": "<=2"}


class RaterQuerySet(models.QuerySet):
    def people(self):
        """Sessions of people: not the researcher's preview, not simulated pilots."""
        return self.exclude(platform__in=Rater.NOT_PEOPLE)

    def simulated(self):
        return self.filter(platform=Rater.SIMULATED)

    def links(self):
        """The campaign's secret rater links (made at launch), not crowd joins or pilots."""
        return self.filter(platform=Rater.LINK)


class RaterManager(models.Manager.from_queryset(RaterQuerySet)):
    def for_vote(self, token):
        """The session behind `token` with its campaign and its next three pending trials
        (candidates loaded), read in one statement: ``(rater, pending)``, or ``(None, [])`` for
        an unknown token. What `cast_vote` needs, so that a vote costs this read and its update.

        Written as SQL for the same reason as the update (`_vote_sql`): compiling the two ORM
        reads it replaces cost more CPU than PostgreSQL spent answering them. The rows become
        model instances as the ORM makes them (each field's converters; texts and JSON deferred,
        see `_vote_fields_of`)."""
        sql, uses = _for_vote_sql(connection.vendor)
        rows = _execute(sql, [token] * uses, fetch=True).fetchall()
        if not rows:
            return None, []
        rater_of, campaign_of, trial_of, candidate_of = _row_loaders(connection.vendor)
        first = rows[0]
        rater, campaign = rater_of(first), campaign_of(first)
        _RATER_CAMPAIGN.set_cached_value(rater, campaign)
        pending = []
        for row in rows:
            trial = trial_of(row)
            if trial.pk is None:  # no trial left: the LEFT JOIN's empty row
                break
            _TRIAL_RATER.set_cached_value(trial, rater)
            _TRIAL_CANDIDATE.set_cached_value(trial, candidate_of(row))
            pending.append(trial)
        return rater, pending

    def create_with_trials(self, campaign, label="", **fields):
        """A new session with its trials, designed by the campaign's protocol."""
        fields.setdefault("participant_key", participant_key(fields.get("participant_id", "")))
        rater = self.create(campaign=campaign, label=label, seed=secrets.randbits(31), **fields)
        trials = [
            Trial(rater=rater, position=position, **spec)
            for position, spec in enumerate(campaign.kind.design_session(rater))
        ]
        Trial.objects.bulk_create(trials)
        rater.n_trials = len(trials)
        rater.save(update_fields=["n_trials"])
        return rater


class Rater(models.Model):
    """One session of one campaign: the person (or preview, or simulated pilot) behind a link,
    their trials and their steps. A person who rates two campaigns has two Rater rows; the
    name is the table's (kept for migrations and exports), the meaning is "a rater's session".
    """

    campaign = models.ForeignKey(Campaign, models.CASCADE, related_name="raters")
    token = models.CharField(max_length=64, unique=True, default=rater_token, editable=False)
    label = models.CharField(max_length=100, blank=True)
    seed = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    participant_id = models.CharField(
        max_length=200, blank=True, help_text="From the crowd platform (PROLIFIC_PID, workerId...)."
    )
    participant_key = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        help_text="The participant id as one person: case, punctuation and spaces removed.",
    )
    client_key = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="A digest of the network address and browser that opened the open link.",
    )
    # How the session came: LINK (a secret link made at launch), a crowd platform ("prolific",
    # "mturk", "other"), PREVIEW or SIMULATED.
    platform = models.CharField(max_length=20, default="link")
    platform_data = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True, help_text="First visit of the link.")
    consented_at = models.DateTimeField(null=True, blank=True)
    display_ok_at = models.DateTimeField(
        null=True, blank=True, help_text="When a display check first let the rater go on."
    )
    calibrated_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    display_checks = models.JSONField(
        default=list, blank=True, help_text="Every display check: viewport, pixel ratio, verdict."
    )
    qc = models.JSONField(default=dict, blank=True, help_text="Quality-control summary.")
    n_trials = models.PositiveIntegerField(default=0, editable=False)

    objects = RaterManager()

    class Meta:
        ordering = ["campaign_id", "created_at", "pk"]
        constraints = [
            # One session per crowd participant and campaign.
            # "ATTACKER00" and "attacker00." are one person (participant_key).
            models.UniqueConstraint(
                fields=["campaign", "participant_key"],
                condition=~Q(participant_key=""),
                name="one_session_per_participant",
            ),
        ]

    def __str__(self):
        return self.label or f"rater {self.pk}"

    def get_absolute_url(self):
        return reverse("study:session", args=[self.token])

    # The session's steps, in the only order the server accepts them.
    CONSENT, DISPLAY, CALIBRATION, TRIALS, DONE = (
        "consent",
        "display",
        "calibration",
        "trials",
        "done",
    )

    def current_trial(self):
        return self.trials.pending().select_related("candidate").first()

    # Sessions that never reach the analysis: the researcher's preview, and simulated raters.
    LINK = "link"
    PREVIEW = "preview"
    SIMULATED = "simulated"
    NOT_PEOPLE = (PREVIEW, SIMULATED)

    @property
    def is_preview(self):
        return self.platform == self.PREVIEW

    def update_platform_data(self, data):
        """A crowd platform's new ids for this session (a new MTurk assignment of the same
        worker is submitted to the new assignment)."""
        merged = {**self.platform_data, **data}
        Rater.objects.filter(pk=self.pk).update(platform_data=merged)
        self.platform_data = merged

    def open_statuses(self):
        """Campaign states in which this session takes steps: live, and for the researcher's
        preview also ready (a pilot walk before launch)."""
        if self.platform == self.PREVIEW:
            return (Campaign.READY, Campaign.LIVE)
        return (Campaign.LIVE,)

    def is_open(self):
        return self.campaign.status in self.open_statuses()

    def stage(self):
        """The first step of the protocol this session has not done; the server takes no other."""
        if self.consented_at is None:
            return self.CONSENT
        if self.display_ok_at is None:
            return self.DISPLAY
        if self.campaign.calibration_dataset_id and self.calibrated_at is None:
            return self.CALIBRATION
        return self.DONE if self.completed_at else self.TRIALS

    def cast_vote(self, position, score, duration_ms=None, vote_id="", pending=None):
        """Store a score for the trial at `position`, the rater's current (first unanswered) one.

        Idempotent: a resent vote for an answered trial stores nothing. When it carries the
        `vote_id` the page gave the stored vote (its first request was stored but its answer
        lost), it is that vote (resent=True); otherwise another window answered the trial
        first (stored=False). A score that is no answer of the campaign's protocol raises
        VoteInvalid; a vote for a later trial, or for the current one before it was handed to
        the page, raises VoteRejected; one that comes sooner than the campaign's
        `vote_floor_ms` after the trial was handed to the page raises VoteTooFast. None of them
        stores anything. Returns the vote's outcome with the trials that come next (at most
        two, candidates loaded), so the caller needs no further query. One read decides: trials
        before the current one are all answered and none after it can be, so the conditional
        update on the current trial is the only race. The same statement marks the next trial
        handed out (the page shows it next) and asks for the live report again: one statement,
        one commit, for all but a session's first and last votes, which record the start and
        the completion with it. `pending`: that read, when the caller made it with the rater's
        (`RaterManager.for_vote`), at most three trials.
        """
        invalid = self.campaign.kind.check_score(score)
        if invalid:
            raise VoteInvalid(invalid)
        if pending is None:
            pending = list(self.trials.pending().select_related("candidate")[:3])
        current = pending[0] if pending else None
        now = timezone.now()
        if current is None or position != current.position:
            answered = position < current.position if current is not None else None
            if answered is False:
                raise VoteRejected("This is not your current image; the page has been refreshed.")
            resent = self._resent(position, vote_id)
            if resent is None:
                raise VoteRejected("This is not your current image; the page has been refreshed.")
            # A resent vote: its first request may have died before recording the completion.
            if current is None:
                self._complete(now)
            return VoteOutcome(stored=False, upcoming=pending[:2], resent=resent)
        if current.shown_at is None:
            raise VoteRejected("This image has not been shown yet; the page has been refreshed.")
        # The server's own guard against a vote for an image nobody saw (a double key press
        # lands on the next trial): no person judges an image this fast.
        seen_ms = (now - current.shown_at).total_seconds() * 1000
        if seen_ms < self.campaign.vote_floor_ms:
            raise VoteTooFast(self.campaign.vote_floor_ms - seen_ms)
        upcoming = pending[1:3]
        fields = {
            **self._vote_fields(current, score, now, duration_ms, int(seen_ms)),
            "vote_id": vote_id,
        }
        first, last = self.started_at is None, not upcoming
        with transaction.atomic() if first or last else nullcontext():
            stored, asked = self._store_vote(
                current, fields, upcoming[0] if upcoming else None, now
            )
            resent = False
            if not stored:
                if not self._is_open_now():
                    raise VoteRejected("This study has ended; your last score was not stored.")
                # Another request answered it in between: this vote's first try, or another window.
                resent = bool(self._resent(position, vote_id))
            if stored and first:
                Rater.objects.filter(pk=self.pk, started_at__isnull=True).update(started_at=now)
            if last:
                self._complete(now)
        if stored and asked is None:  # the live report is computed again by a cpu worker
            ReportCache.objects.votes_arrived(self.campaign_id)
        return VoteOutcome(stored=stored, upcoming=upcoming, resent=resent)

    def _store_vote(self, current, fields, following, now):
        """One conditional update: the vote on `current` (if still unanswered) and `following`
        marked handed out (if not yet), both only while the campaign is open. Returns whether
        the vote was stored (`following`'s row always matches while the campaign is open, so
        the row count tells), and whether it asked for the live report again: True or False
        when the same statement did (PostgreSQL, as `ReportCache.objects.flag_in_vote` allows),
        None when the caller still has to (`votes_arrived`).

        Written as SQL (portable: CASE, COALESCE, EXISTS; on PostgreSQL the report's flag joins
        it as a data-modifying WITH): the ORM took longer to build this statement than the
        database took to run it, on the path every vote takes."""
        ops = connection.ops
        statuses = self.open_statuses()
        values = [
            ops.adapt_datetimefield_value(value) if name == "answered_at" else value
            for name, value in fields.items()
        ]
        following_pk = following.pk if following is not None else None
        params = [param for value in values for param in (current.pk, value)]
        params += [following_pk, ops.adapt_datetimefield_value(now)]
        params += [current.pk, following_pk, self.campaign_id, *statuses]
        flag = ReportCache.objects.flag_in_vote(self.campaign_id, now)
        asked = None
        if flag is None:
            updated = _execute(_vote_sql(tuple(fields), len(statuses)), params).rowcount
        else:
            sql = _vote_and_flag_sql(tuple(fields), len(statuses))
            updated, flagged = _execute(sql, [*params, *flag, current.pk], fetch=True).fetchone()
            asked = bool(flagged)
        stored = updated == (2 if following is not None else 1)
        if following is not None and updated:
            following.shown_at = following.shown_at or now
        if asked:
            ReportCache.objects.publish_on_commit(self.campaign_id)
        return stored, asked if stored else False

    def _resent(self, position, vote_id):
        """For an answered trial at `position`: whether its stored vote is the one `vote_id`
        names (a resend of it). None when no trial there is answered."""
        stored = self.trials.answered().filter(position=position).values_list("vote_id").first()
        if stored is None:
            return None
        return bool(vote_id) and stored[0] == vote_id

    def record_votes(self, scores):
        """Store many votes at once, {position: score}, for sessions no page times: simulated
        pilots. The same score check, flags and completion as `cast_vote`; answered trials
        stay as they are. Returns the number stored; raises VoteInvalid (storing nothing) for
        a score that is no answer of the protocol, VoteRejected when the campaign is closed.
        """
        for score in scores.values():
            invalid = self.campaign.kind.check_score(score)
            if invalid:
                raise VoteInvalid(invalid)
        if not self._is_open_now():
            raise VoteRejected("This study has ended; the scores were not stored.")
        now = timezone.now()
        trials = list(self.trials.pending().filter(position__in=list(scores)))
        for trial in trials:
            for name, value in self._vote_fields(trial, int(scores[trial.position]), now).items():
                setattr(trial, name, value)
        fields = ["score", "answered_at", "duration_ms", "server_ms", "flags"]
        Trial.objects.bulk_update(trials, fields, 500)
        if trials:
            ReportCache.objects.votes_arrived(self.campaign_id)
        if trials and self.started_at is None:
            Rater.objects.filter(pk=self.pk, started_at__isnull=True).update(started_at=now)
            self.started_at = now
        if not self.trials.pending().exists():
            self._complete(now)
        return len(trials)

    def _vote_fields(self, trial, score, now, duration_ms=None, server_ms=None):
        # Too fast by the server's clock: the page's own figure is any number a script sends.
        flags = vote_flags(trial.expected, score, server_ms, self.campaign.min_view_ms)
        return {
            "score": score,
            "answered_at": now,
            "duration_ms": duration_ms,
            "server_ms": server_ms,
            "flags": flags,
        }

    def _is_open_now(self):
        return Campaign.objects.filter(
            pk=self.campaign_id, status__in=self.open_statuses()
        ).exists()

    def _complete(self, now):
        if self.completed_at is None:
            qc = self.quality()
            if self.rushed(now):
                qc = {**qc, "rushed": True, "flags": [*qc.get("flags", []), "rushed"]}
            Rater.objects.filter(pk=self.pk, completed_at__isnull=True).update(
                completed_at=now, qc=qc
            )
            self.completed_at, self.qc = now, qc

    def rushed(self, now):
        """Finished faster than the campaign allows, by the server's clock: the images were on
        screen (from hand-out to vote) for less than min_view_ms each, all together."""
        timed = self.trials.filter(server_ms__isnull=False).aggregate(
            n=Count("id"), t=Sum("server_ms")
        )
        if not self.campaign.min_view_ms or not timed["n"]:
            return False
        return timed["t"] < self.campaign.min_view_ms * timed["n"]

    def code_withheld(self):
        """Whether the done page withholds the completion code (a rushed session, when the
        campaign says so)."""
        return bool(self.qc.get("rushed")) and self.campaign.rushed_sessions == "withhold"

    def quality(self):
        """This session's quality-control summary; reported to the researcher, never applied."""
        return self.campaign.kind.quality(self)

    # The steps before the trials. Each update is conditional, so a repeated request (a double
    # click, a second tab) keeps the first time.
    def mark_opened(self):
        Rater.objects.filter(pk=self.pk, opened_at__isnull=True).update(opened_at=timezone.now())

    def give_consent(self, user_agent):
        Rater.objects.filter(pk=self.pk, consented_at__isnull=True).update(
            consented_at=timezone.now(), user_agent=user_agent[:500]
        )

    def finish_calibration(self):
        Rater.objects.filter(pk=self.pk, calibrated_at__isnull=True).update(
            calibrated_at=timezone.now()
        )

    def record_display_check(self, check, passed):
        """Keep a display check (the last 20) and, on the first pass, move the session on."""
        with transaction.atomic():
            locked = Rater.objects.select_for_update().get(pk=self.pk)
            locked.display_checks = [*locked.display_checks, check][-20:]
            if passed and locked.display_ok_at is None:
                locked.display_ok_at = timezone.now()
            locked.save(update_fields=["display_checks", "display_ok_at"])
        self.display_checks, self.display_ok_at = locked.display_checks, locked.display_ok_at

    def pair_layout(self):
        """Paired comparison: the layout the latest display check chose (side by side if none)."""
        checks = self.display_checks or []
        return (checks[-1].get("pair_layout") if checks else None) or "side-by-side"


class VoteRejected(Exception):
    """A vote the server refuses; nothing was stored. The message is for the rater."""


class VoteInvalid(VoteRejected):
    """A score that is no answer of the campaign's protocol (a bad request, not a resync)."""


class VoteTooFast(VoteRejected):
    """A vote that came sooner than the campaign's floor after its image was handed out."""

    def __init__(self, wait_ms):
        self.wait_ms = max(int(wait_ms), 1)
        super().__init__("Please look at the image a little longer before you score it.")


@dataclass(frozen=True)
class VoteOutcome:
    """`stored`: this request stored the vote; `resent`: the vote was stored by an earlier
    request of the same vote (same vote id) whose answer the page never got."""

    stored: bool
    upcoming: list
    resent: bool = False


class TrialQuerySet(models.QuerySet):
    def columns(self, *fields, iso=True):
        """The rows' ``fields`` (names of Trial's own columns) as columns: name -> list, in the
        queryset's order, read through one cursor with no model or tuple conversion per row and
        no garbage collection meanwhile (a paper-size study's 29,568 rows: 0.05 s instead of
        0.25 s). ``answered_at`` comes as ISO 8601 text, exactly as ``datetime.isoformat`` writes
        an aware UTC time, or with ``iso=False`` as integer microseconds since 1970 (None where
        unanswered); on PostgreSQL it is read as integer microseconds and formatted, if at all,
        in one array pass (psycopg's per-row datetimes were half the read)."""
        fields = list(fields)
        if connection.vendor != "postgresql":  # the embedded default: Django's own conversions
            with _no_collection():
                rows = list(self.values_list(*fields))
            out = _as_columns(fields, rows)
            if "answered_at" in out:
                as_text = (lambda t: t.isoformat()) if iso else _micros
                out["answered_at"] = [as_text(t) if t else None for t in out["answered_at"]]
            return out
        stamp = "answered_at" in fields
        query = self
        if stamp:
            query = self.annotate(answered_us=_EPOCH_US)
            fields[fields.index("answered_at")] = "answered_us"
        sql = query.values_list(*fields).query.get_compiler(connection=connection).as_sql()
        with connection.cursor() as cursor, _no_collection():
            cursor.execute(*sql)
            out = _as_columns(fields, cursor.fetchall())
        if stamp:
            micros = out.pop("answered_us")
            out["answered_at"] = _iso_utc(micros) if iso else micros
        return out

    def answered(self):
        return self.filter(score__isnull=False)

    def pending(self):
        return self.filter(score__isnull=True)

    def for_analysis(self, campaign, people_only=False):
        """The campaign's answered trials that are data: never the researcher's preview, and
        with `people_only` no simulated pilot either (every export labels those)."""
        excluded = Rater.NOT_PEOPLE if people_only else (Rater.PREVIEW,)
        return (
            self.answered().filter(rater__campaign=campaign).exclude(rater__platform__in=excluded)
        )


# answered_at as integer microseconds since 1970 (PostgreSQL: EXTRACT gives an exact numeric).
_EPOCH_US = models.Func(
    models.F("answered_at"),
    template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint",
    output_field=models.BigIntegerField(),
)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(t):
    """An aware time as integer microseconds since 1970 (exact: no float in between)."""
    return (t - _EPOCH) // timedelta(microseconds=1)


def _iso_utc(micros):
    """ISO 8601 text of UTC times given as integer microseconds (None stays None), as
    ``datetime.isoformat`` writes them: no fraction when it is zero, ``+00:00`` at the end."""
    known = [m is not None for m in micros]
    values = np.array([m if m is not None else 0 for m in micros], dtype="int64")
    text = np.datetime_as_string(values.astype("datetime64[us]"), unit="us").astype(object)
    whole = values % 1_000_000 == 0
    text[whole] = [t[:-7] for t in text[whole]]
    return [t + "+00:00" if k else None for t, k in zip(text, known, strict=True)]


def _as_columns(fields, rows):
    """Row tuples as name -> list."""
    if not rows:
        return {f: [] for f in fields}
    return dict(zip(fields, map(list, zip(*rows, strict=True)), strict=True))


@contextmanager
def _no_collection():
    """No garbage collection while a study's worth of row tuples is made and dropped: they hold
    no cycles, but their number starts full collections of the whole process (Django, pandas),
    which doubled a read's time and made it vary from 30 to 190 ms at paper size."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Trial(models.Model):
    rater = models.ForeignKey(Rater, models.CASCADE, related_name="trials")
    candidate = models.ForeignKey(Candidate, models.PROTECT, related_name="trials")
    # Paired comparison: the second image (B); the score is then 1 (A looks better) or 2 (B).
    partner = models.ForeignKey(
        Candidate, models.PROTECT, null=True, blank=True, related_name="partner_trials"
    )
    pair_pending = models.BooleanField(
        default=False,
        help_text="Active pair design: the pair is chosen when the page first needs it.",
    )
    position = models.PositiveIntegerField()
    score = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(i, str(i)) for i in range(1, 6)]
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    kind = models.CharField(
        max_length=10, default="rating", choices=[("rating", "Rating"), ("retest", "Retest")]
    )
    repeat = models.PositiveSmallIntegerField(default=0, help_text="1 for the retest showing.")
    expected = models.CharField(
        max_length=4, blank=True, help_text="Gold item: '>=4' (HR) or '<=2' (nearest neighbour)."
    )
    shown_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Viewing time the page claims (kept beside the server's figure, never trusted).",
    )
    server_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Viewing time measured by the server: from handing the image out to the vote.",
    )
    flags = models.CharField(max_length=100, blank=True)
    # The page's id for the vote (one per key press): a resend of a stored vote is told apart
    # from another window's vote on the same image.
    vote_id = models.CharField(max_length=36, blank=True, editable=False)

    objects = TrialQuerySet.as_manager()

    class Meta:
        # Column names, not relations: ordering by "rater" would join and sort by Rater's ordering.
        ordering = ["rater_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rater", "position"], name="unique_trial_position"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5),
                name="score_1_to_5",
            ),
            # A comparison's score is its choice, A (1) or B (2) (study.protocols.pc).
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(partner__isnull=True) | Q(score__in=(1, 2)),
                name="comparison_a_or_b",
            ),
        ]

    def __str__(self):
        return f"{self.rater} #{self.position}"

    @staticmethod
    def rater_key(rater_id):
        """How every export and analysis frame names a session: ``r`` and its id."""
        return f"r{rater_id}"

    def mark_shown(self):
        """Record when the image was first put on a page for the rater (a reload keeps it)."""
        if self.shown_at is None:
            Trial.objects.filter(pk=self.pk, shown_at__isnull=True).update(shown_at=timezone.now())


def _execute(sql, params, fetch=False):
    """Run one of the vote path's statements; returns its rows (with `fetch`) and row count.

    On PostgreSQL (unless ``SRMOS_PREPARED_VOTES`` is off) the params are bound on the server
    and the statement is prepared once per connection: PostgreSQL then parses and plans the
    vote's read and update once, not on every vote, which was most of its CPU per vote. Django
    binds on the client and never prepares (poolers in transaction mode did not support
    prepared statements before pgbouncer 1.21), so this is the vote path's own cursor, wrapped
    as Django's are: its errors become django.db errors and debug logging sees it."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or not settings.SRMOS_PREPARED_VOTES:
            cursor.execute(sql, params)
            return _Result(cursor.fetchall() if fetch else [], cursor.rowcount)
        raw = _server_binding_cursor(cursor.cursor.connection)
        started = time.monotonic()
        try:
            with connection.wrap_database_errors:
                raw.execute(sql, params, prepare=True)
                return _Result(raw.fetchall() if fetch else [], raw.rowcount)
        finally:
            raw.close()
            if connection.queries_logged:
                connection.queries_log.append(
                    {"sql": f"{sql} -- {params!r}", "time": f"{time.monotonic() - started:.3f}"}
                )


@dataclass
class _Result:
    rows: list
    rowcount: int

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


def _server_binding_cursor(raw_connection):
    from django.db.backends.postgresql.base import ServerBindingCursor

    if raw_connection.prepare_threshold is None:
        # Django turns psycopg's preparing off for the whole connection. Its own cursors bind
        # on the client and never prepare whatever the threshold; a threshold no statement
        # reaches lets `prepare=True` prepare the vote's two, and nothing else.
        raw_connection.prepare_threshold = 2**31 - 1
    return ServerBindingCursor(raw_connection)


@cache
def _vote_and_flag_sql(names, n_statuses):
    """PostgreSQL: `_vote_sql` and the live report's request flag in one statement. Params:
    those of `_vote_sql`, then those of `ReportCache.objects.flag_in_vote` (now, the campaign,
    the stale limit), then the current trial's id. Its one row: the trial rows updated, and
    whether the flag was set (only when the current trial's vote was stored)."""
    cache_table = ReportCache._meta
    quote = connection.ops.quote_name
    requested_at = quote(cache_table.get_field("requested_at").column)
    pk = quote(Trial._meta.pk.column)
    return (
        f"WITH v AS ({_vote_sql(names, n_statuses)} RETURNING {pk}),"
        f" f AS (UPDATE {quote(cache_table.db_table)} SET {requested_at} = %s"
        f" WHERE {quote(cache_table.pk.column)} = %s"
        f" AND ({requested_at} IS NULL OR {requested_at} < %s)"
        f" AND EXISTS (SELECT 1 FROM v WHERE v.{pk} = %s) RETURNING 1)"
        " SELECT (SELECT COUNT(*) FROM v), (SELECT COUNT(*) FROM f)"
    )


# The relations `for_vote` fills as select_related and a related manager would.
_RATER_CAMPAIGN = Rater._meta.get_field("campaign")
_TRIAL_RATER = Trial._meta.get_field("rater")
_TRIAL_CANDIDATE = Trial._meta.get_field("candidate")
# The tables `for_vote` reads, in the order of its columns, with their aliases.
_FOR_VOTE_TABLES = ((Rater, "r"), (Campaign, "c"), (Trial, "t"), (Candidate, "d"))


def _vote_fields_of(model):
    """The columns `for_vote` reads of `model`: what a vote reads, not texts, JSON, files (the
    consent text, metric notes, display checks: kilobytes the vote never reads, repeated on each
    of its rows), nor the campaign's and candidates' times and the session's join details.
    Each rater and campaign column comes three times (once per trial row), and parsing them was
    most of the read's CPU. The rest stay deferred, as with `.defer()`: reading one costs its
    own query (tests.test_vote_path checks that a vote reads none)."""
    skipped = _VOTE_SKIPPED.get(model, ())
    return [
        field
        for field in model._meta.concrete_fields
        if field.name not in skipped
        and not isinstance(field, (models.TextField, models.JSONField, models.FileField))
        and not (model in (Campaign, Candidate) and isinstance(field, models.DateTimeField))
    ]


_VOTE_SKIPPED = {
    Rater: (
        "label",
        "participant_id",
        "participant_key",
        "client_key",
        "user_agent",
        "created_at",
        "opened_at",
    ),
    Campaign: ("recruit_token", "completion_code", "completion_url"),
    Candidate: ("psnr", "ssim", "claim", "notes", "seconds", "attempts"),
}


@cache
def _for_vote_sql(vendor):
    """The statement of `RaterManager.for_vote` and how many times it takes the token. The next
    three pending trials come from a LATERAL subquery on PostgreSQL (one index scan of the
    session's trials); elsewhere (SQLite has no LATERAL) from an IN over the same subquery,
    reached by the token so that it is computed once, not once per row."""
    quote = connection.ops.quote_name
    columns = ", ".join(
        f"{alias}.{quote(field.column)}"
        for model, alias in _FOR_VOTE_TABLES
        for field in _vote_fields_of(model)
    )
    rater, campaign, trial, candidate = (model._meta for model, _ in _FOR_VOTE_TABLES)
    pk, score, position, token = (quote(name) for name in ("id", "score", "position", "token"))
    rater_fk = quote(trial.get_field("rater").column)
    trials = quote(trial.db_table)
    head = (
        f"SELECT {columns} FROM {quote(rater.db_table)} r"
        f" INNER JOIN {quote(campaign.db_table)} c"
        f" ON c.{pk} = r.{quote(rater.get_field('campaign').column)}"
    )
    if vendor == "postgresql":
        pending = (
            f" LEFT JOIN LATERAL (SELECT * FROM {trials} p WHERE p.{rater_fk} = r.{pk}"
            f" AND p.{score} IS NULL ORDER BY p.{position} LIMIT 3) t ON TRUE"
        )
        uses = 1
    else:
        pending = (
            f" LEFT JOIN {trials} t ON t.{rater_fk} = r.{pk} AND t.{score} IS NULL"
            f" AND t.{position} IN (SELECT p.{position} FROM {trials} p"
            f" INNER JOIN {quote(rater.db_table)} pr ON pr.{pk} = p.{rater_fk}"
            f" WHERE pr.{token} = %s AND p.{score} IS NULL ORDER BY p.{position} LIMIT 3)"
        )
        uses = 2
    tail = (
        f" LEFT JOIN {quote(candidate.db_table)} d"
        f" ON d.{pk} = t.{quote(trial.get_field('candidate').column)}"
        f" WHERE r.{token} = %s ORDER BY t.{position}"
    )
    return head + pending + tail, uses


@cache
def _row_loaders(vendor):
    """For each table of `for_vote`, a function from the row to a model instance: its slice of
    the row through each field's database converters (as the ORM applies them), then
    `Model.from_db`."""
    del vendor
    loaders, start = [], 0
    for model, alias in _FOR_VOTE_TABLES:
        fields = _vote_fields_of(model)
        names = [field.attname for field in fields]
        converters = []
        for i, field in enumerate(fields):
            column = field.get_col(alias)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                converters.append((i, column, found))
        loaders.append(_loader(model, names, converters, start, start + len(fields)))
        start += len(fields)
    return loaders


def _loader(model, names, converters, start, stop):
    db = connection.alias

    def load(row):
        values = list(row[start:stop])
        for i, column, found in converters:
            for convert in found:
                values[i] = convert(values[i], column, connection)
        return model.from_db(db, names, values)

    return load


@cache
def _vote_sql(names, n_statuses):
    """The statement of `Rater._store_vote`. Params, in order: (the current trial's id, the
    value) for each of the vote's columns `names`; the next trial's id (or None) and now, for
    its shown_at; the current trial's id and the next one's, for the rows; the campaign's id
    and the `n_statuses` statuses in which it is open."""
    trial, campaign = Trial._meta, Campaign._meta
    quote = connection.ops.quote_name
    pk = quote(trial.pk.column)
    columns = [quote(trial.get_field(name).column) for name in names]
    score, shown_at = (
        quote(trial.get_field("score").column),
        quote(trial.get_field("shown_at").column),
    )
    sets = [f"{column} = CASE WHEN {pk} = %s THEN %s ELSE {column} END" for column in columns]
    sets.append(
        f"{shown_at} = CASE WHEN {pk} = %s THEN COALESCE({shown_at}, %s) ELSE {shown_at} END"
    )
    return (
        f"UPDATE {quote(trial.db_table)} SET {', '.join(sets)}"
        f" WHERE (({pk} = %s AND {score} IS NULL) OR {pk} = %s)"
        f" AND EXISTS (SELECT 1 FROM {quote(campaign.db_table)} c"
        f" WHERE c.{quote(campaign.pk.column)} = %s AND c.{quote('status')}"
        f" IN ({', '.join(['%s'] * n_statuses)}))"
    )
