"""A rater's session: the trials in their seeded order, the votes, and the session's quality checks."""

import secrets
from dataclasses import dataclass

from django.db import models
from django.db.models import Count, Exists, Q
from django.urls import reverse
from django.utils import timezone

from study.analysis import session_quality, vote_flags
from study.analysis.pair_checks import pair_session_quality
from study.models.campaign import Campaign, Candidate
from study.models.order import retest_count, session_order
from study.models.pairs import design_pairs, pair_session
from study.models.tokens import rater_token

# Gold items: the anchors' expected scores (P.808 accepts a gold answer within +-1).
GOLD_EXPECTATIONS = {"hr": ">=4", "nearest": "<=2"}


class RaterManager(models.Manager):
    def create_with_trials(self, campaign, label="", **fields):
        rater = self.create(campaign=campaign, label=label, seed=secrets.randbits(31), **fields)
        if campaign.protocol == campaign.PC:
            return self._with_pairs(rater, campaign)
        rows = list(
            campaign.candidates.filter(status=Candidate.DONE, role=Candidate.RATING).values_list(
                "pk", "image_id", "method__slug"
            )
        )
        slugs = {pk: slug for pk, _, slug in rows}
        order = session_order(
            [(pk, image) for pk, image, _ in rows],
            campaign.retest_share,
            seed=f"{campaign.seed}:{rater.seed}",
        )
        trials = [
            Trial(
                rater=rater,
                candidate_id=pk,
                position=position,
                kind="retest" if repeat else "rating",
                repeat=repeat,
                expected=GOLD_EXPECTATIONS.get(slugs[pk], "") if campaign.gold_items else "",
            )
            for position, (pk, repeat) in enumerate(order)
        ]
        Trial.objects.bulk_create(trials)
        rater.n_trials = len(trials)
        rater.save(update_fields=["n_trials"])
        return rater

    def _with_pairs(self, rater, campaign):
        """A paired-comparison session: pairs per the campaign's design, shown in a seeded
        order with random sides (study.models.pairs)."""
        rows = list(
            campaign.candidates.filter(status=Candidate.DONE, role=Candidate.RATING).values_list(
                "pk", "image_id"
            )
        )
        seed = f"{campaign.seed}:{rater.seed}"
        active = campaign.pair_design == campaign.ACTIVE
        # Active: the images and their order are fixed now; which two versions each trial
        # compares is chosen when the page first needs it, from the votes cast by then
        # (study.rating.active). Random pairs hold the places until then.
        design = campaign.RANDOM if active else campaign.pair_design
        pairs = design_pairs(rows, design, campaign.pairs_per_image, seed)
        trials = [
            Trial(
                rater=rater,
                candidate_id=left,
                partner_id=right,
                position=position,
                kind="retest" if repeat else "rating",
                repeat=repeat,
                pair_pending=active and not repeat,
            )
            for position, (left, right, repeat) in enumerate(
                pair_session(pairs, campaign.retest_share, seed)
            )
        ]
        Trial.objects.bulk_create(trials)
        rater.n_trials = len(trials)
        rater.save(update_fields=["n_trials"])
        return rater


def comparison_votes(campaign, people_only=False, offset=0):
    """The campaign's answered paired comparisons in the long format study.analysis.pairwise
    takes: ``rater, dataset, image, method_a, method_b, choice`` (the chosen method), ``kind``,
    ``position``, ``timestamp``, in the order they were answered (replayable); ``offset``
    leaves out the first ones (those a cached state has seen)."""
    import pandas as pd

    trials = Trial.objects.answered().filter(rater__campaign=campaign, partner__isnull=False)
    # The researcher's preview is no data; simulated sessions are, labelled, unless excluded.
    trials = trials.exclude(rater__platform__in=Rater.NOT_PEOPLE if people_only else ["preview"])
    rows = trials.order_by("answered_at", "pk")[offset:].values_list(
        "rater_id",
        "candidate__image__dataset__name",
        "candidate__image__name",
        "candidate__method__slug",
        "partner__method__slug",
        "score",
        "kind",
        "position",
        "answered_at",
        "duration_ms",
        "rater__platform",
    )
    columns = ["rater", "dataset", "image", "method_a", "method_b", "choice", "kind", "position"]
    # rater_platform tells real sessions from simulated ones, as in the ratings' votes.csv.
    records = [(*r[:5], r[3] if r[5] == 1 else r[4], *r[6:]) for r in rows]
    return pd.DataFrame(records, columns=[*columns, "timestamp", "duration_ms", "rater_platform"])


class Rater(models.Model):
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
            models.UniqueConstraint(
                fields=["campaign", "participant_id"],
                condition=~Q(participant_id=""),
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
    PREVIEW = "preview"
    SIMULATED = "simulated"
    NOT_PEOPLE = (PREVIEW, SIMULATED)

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

    def cast_vote(self, position, score, duration_ms=None):
        """Store a score for the trial at `position`, the rater's current (first unanswered) one.

        Idempotent: a resent vote for an answered trial stores nothing (stored=False). A vote
        for a later trial, or for the current one before it was handed to the page, raises
        VoteRejected; one that comes sooner than the campaign's `vote_floor_ms` after the trial
        was handed to the page raises VoteTooFast. Neither stores anything. Returns the vote's outcome with the trials that
        come next (at most two, candidates loaded), so the caller needs no further query.
        One read decides: trials before the current one are all answered and none after it can
        be, so the conditional update on the current trial is the only race to settle.
        """
        pending = list(self.trials.pending().select_related("candidate")[:3])
        current = pending[0] if pending else None
        now = timezone.now()
        if current is None or position != current.position:
            answered = (
                position < current.position
                if current is not None
                else self.trials.filter(position=position).exists()
            )
            if not answered:
                raise VoteRejected("This is not your current image; the page has been refreshed.")
            # A resent vote: its first request may have died before recording the completion.
            if current is None:
                self._complete(now)
            return VoteOutcome(stored=False, upcoming=pending[:2])
        if current.shown_at is None:
            raise VoteRejected("This image has not been shown yet; the page has been refreshed.")
        # The server's own guard against a vote for an image nobody saw (a double key press
        # lands on the next trial): no person judges an image this fast.
        seen_ms = (now - current.shown_at).total_seconds() * 1000
        if seen_ms < self.campaign.vote_floor_ms:
            raise VoteTooFast(self.campaign.vote_floor_ms - seen_ms)
        # Conditional on the campaign being live in the same statement: a vote in flight when
        # the researcher closes the study is refused, not stored after the close.
        live = Exists(Campaign.objects.filter(pk=self.campaign_id, status__in=self.open_statuses()))
        stored = Trial.objects.filter(live, pk=current.pk, score__isnull=True).update(
            score=score,
            answered_at=now,
            duration_ms=duration_ms,
            flags=vote_flags(current.expected, score, duration_ms, self.campaign.min_view_ms),
        )
        if (
            not stored
            and not Campaign.objects.filter(
                pk=self.campaign_id, status__in=self.open_statuses()
            ).exists()
        ):
            raise VoteRejected("This study has ended; your last score was not stored.")
        if stored and self.started_at is None:
            Rater.objects.filter(pk=self.pk, started_at__isnull=True).update(started_at=now)
        if len(pending) == 1:
            self._complete(now)
        return VoteOutcome(stored=bool(stored), upcoming=pending[1:3])

    def _complete(self, now):
        if self.completed_at is None:
            Rater.objects.filter(pk=self.pk, completed_at__isnull=True).update(
                completed_at=now, qc=self.quality()
            )

    def quality(self):
        """This session's quality-control summary; reported to the researcher, never applied."""
        if self.campaign.protocol == self.campaign.PC:
            pairs = self.trials.answered().values_list(
                "candidate_id", "partner_id", "score", "kind", "duration_ms"
            )
            return pair_session_quality(pairs, self.display_checks)
        votes = list(
            self.trials.answered().values_list(
                "candidate_id", "score", "kind", "flags", "duration_ms", "expected"
            )
        )
        return session_quality(votes, self.campaign.straightline_min_variance, self.display_checks)


# A rater's time per vote before any is measured (pilots of the SRGAN protocol: 4-8 s).
PILOT_SECONDS_PER_VOTE = 6.0


def consent_for_display(campaign):
    """The consent text with {minutes} filled in from the session length estimate."""
    if "{minutes}" not in campaign.consent_text:
        return campaign.consent_text
    minutes = session_estimate(campaign)[0]
    text = campaign.consent_text.replace(
        "{minutes} minutes", f"{minutes} minute" + "s" * (minutes != 1)
    )
    return text.replace("{minutes}", str(minutes))


def session_estimate(campaign):
    """(minutes, trials, seconds per vote, measured?) for one rater's session.

    Trials: rated candidates plus retests plus the calibration examples. Seconds per vote:
    the median viewing time of people's votes once 20 exist, else a pilot's typical 6 s.
    """
    rated = campaign.candidates.filter(role=Candidate.RATING, status=Candidate.DONE).count()
    if not rated:
        rated = campaign.datasets.aggregate(n=Count("images"))["n"] * campaign.methods.count()
    if campaign.protocol == campaign.PC:
        # Comparisons, not candidates: per image every pair, or pairs_per_image of them.
        methods = campaign.methods.count()
        images = rated // methods if methods else 0
        per_image = methods * (methods - 1) // 2
        if campaign.pair_design != campaign.FULL:
            per_image = min(per_image, campaign.pairs_per_image)
        rated = images * per_image
    trials = rated + retest_count(rated, campaign.retest_share)
    if campaign.calibration_dataset_id:
        trials += min(campaign.calibration_images, campaign.calibration_dataset.images.count())
    # The (upper) median in the database: the welcome page asks, and a paper-size campaign has
    # tens of thousands of votes, so two small queries instead of fetching every duration.
    timed = Trial.objects.filter(rater__campaign=campaign, duration_ms__isnull=False).exclude(
        rater__platform__in=Rater.NOT_PEOPLE
    )
    n = timed.count()
    measured = n >= 20
    seconds = PILOT_SECONDS_PER_VOTE
    if measured:
        seconds = timed.order_by("duration_ms").values_list("duration_ms", flat=True)[n // 2] / 1000
    return max(1, round(trials * seconds / 60)), trials, seconds, measured


class VoteRejected(Exception):
    """A vote the server refuses; nothing was stored. The message is for the rater."""


class VoteTooFast(VoteRejected):
    """A vote that came sooner than the campaign's floor after its image was handed out."""

    def __init__(self, wait_ms):
        self.wait_ms = max(int(wait_ms), 1)
        super().__init__("Please look at the image a little longer before you score it.")


@dataclass(frozen=True)
class VoteOutcome:
    stored: bool
    upcoming: list


class TrialQuerySet(models.QuerySet):
    def answered(self):
        return self.filter(score__isnull=False)

    def pending(self):
        return self.filter(score__isnull=True)


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
        null=True, blank=True, help_text="Viewing time measured by the page before the vote."
    )
    flags = models.CharField(max_length=100, blank=True)

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
        ]

    def __str__(self):
        return f"{self.rater} #{self.position}"

    def mark_shown(self):
        """Record when the image was first put on a page for the rater (a reload keeps it)."""
        if self.shown_at is None:
            Trial.objects.filter(pk=self.pk, shown_at__isnull=True).update(shown_at=timezone.now())
