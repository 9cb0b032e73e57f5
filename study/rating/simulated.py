"""Simulated raters: sessions voted by `study.analysis.simulate` around the SRGAN paper's MOS,
for pilots, demos and benchmarks. Their sessions have platform "simulated", which every export
carries (`rater_platform`), so they can never pass for people."""

import random

import pandas as pd
from django.db import transaction
from django.utils import timezone

from study.analysis.simulate import simulate_votes
from study.models import Campaign, Candidate, Rater, Trial, vote_flags
from study.rating.active import choose_pairs

KEY = ["dataset", "image", "method"]


def add_simulated_raters(campaign, raters, profile="paper", bad=2, seed=0, mix_with_real=False):
    """Add `raters` finished simulated sessions (`bad` of them careless) to a live campaign.

    Returns the number of votes stored. Raises ValueError, storing nothing, when the campaign
    is not live, when `raters` < 1, or when people have voted already and `mix_with_real` is
    False (simulated votes would be mixed into their study).
    """
    if campaign.status != Campaign.LIVE:
        raise ValueError(f"campaign {campaign.name} is {campaign.status}: launch it first")
    if raters < 1:
        raise ValueError("the number of simulated raters must be at least 1")
    people = campaign.raters.exclude(platform__in=Rater.NOT_PEOPLE).filter(
        trials__score__isnull=False
    )
    if not mix_with_real and people.exists():
        raise ValueError(
            f"campaign {campaign.name} already has votes from {people.distinct().count()} "
            "real rater(s): simulated votes would be mixed into their study (the exports "
            "label them rater_platform=simulated). Use a copy of the campaign, or allow mixing "
            "(simulate_raters --mix-with-real-votes) if that is what you want."
        )
    design = _design(campaign)
    first = simulate_votes(design, n_raters=raters, profile=profile, seed=seed, bad_raters=bad)
    # Retest showings get an independent second draw of the same panel.
    again = simulate_votes(design, n_raters=raters, profile=profile, seed=seed + 1, bad_raters=bad)
    lookup = design.set_index(KEY)["candidate"]
    existing = campaign.raters.filter(platform="simulated").count()
    added = 0
    with transaction.atomic():
        for name, votes in first.groupby("rater", sort=True):
            label = f"simulated {existing + int(name[1:]):02d} ({votes['simulated_as'].iloc[0]})"
            scores = {
                "rating": _scores_by_candidate(votes, lookup),
                "retest": _scores_by_candidate(again[again["rater"] == name], lookup),
            }
            added += _vote_session(campaign, label, scores)
    return added


def _design(campaign):
    rows = campaign.candidates.filter(role=Candidate.RATING, status=Candidate.DONE).values_list(
        "pk", "image__dataset__name", "image__name", "method__slug"
    )
    return pd.DataFrame(list(rows), columns=["candidate", *KEY])


def _scores_by_candidate(votes, lookup):
    candidates = lookup.loc[pd.MultiIndex.from_frame(votes[KEY])]
    return dict(zip(candidates, votes["score"], strict=True))


def _vote_session(campaign, label, scores):
    """One finished simulated session: every trial answered from `scores[kind][candidate]`."""
    now = timezone.now()
    rater = Rater.objects.create_with_trials(
        campaign, label=label, platform="simulated", consented_at=now, calibrated_at=now
    )
    trials = list(rater.trials.select_related("candidate__image__dataset").order_by("position"))
    # An active design chooses each pair from the votes so far: answer one trial at a time.
    active = any(t.pair_pending for t in trials)
    rng = random.Random(f"{rater.pk}:{label}")
    for trial in trials:
        if trial.pair_pending:
            choose_pairs(rater, [trial])
        elif active and trial.repeat:
            trial.refresh_from_db(fields=["candidate", "partner"])  # its original's pair
        score = scores[trial.kind][trial.candidate_id]
        if trial.partner_id is not None:
            # A comparison: the version the simulated rater scored higher wins (ties: a coin).
            other = scores[trial.kind][trial.partner_id]
            score = 1 if score > other else 2 if other > score else rng.choice((1, 2))
        trial.score = int(score)
        trial.answered_at = now
        trial.flags = vote_flags(trial.expected, trial.score, None, 0)
        if active:
            trial.save(update_fields=["score", "answered_at", "flags"])
    if not active:
        Trial.objects.bulk_update(trials, ["score", "answered_at", "flags"], batch_size=500)
    rater.started_at = rater.completed_at = now
    rater.qc = rater.quality()
    rater.save(update_fields=["started_at", "completed_at", "qc"])
    return len(trials)
