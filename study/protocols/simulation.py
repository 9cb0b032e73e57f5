"""Simulated raters for pilots, demos and benchmarks: votes drawn by `study.analysis.simulate`
around the SRGAN paper's MOS, stored through the same `Rater.record_votes` as everyone's. Their
sessions have platform "simulated", which every export carries (`rater_platform`)."""

from dataclasses import dataclass

import pandas as pd
from django.db import transaction
from django.utils import timezone

from study.analysis.simulate import simulate_votes
from study.analysis.simulate_pc import simulated_choices
from study.models import Candidate, Rater

KEY = ["dataset", "image", "method"]


@dataclass(frozen=True)
class Options:
    profile: str = "paper"
    bad: int = 2
    seed: int = 0


def _design(campaign):
    rows = campaign.candidates.filter(role=Candidate.RATING, status=Candidate.DONE).values_list(
        "pk", "image__dataset__name", "image__name", "method__slug"
    )
    return pd.DataFrame(list(rows), columns=["candidate", *KEY])


def _panel(protocol, campaign, sessions, options):
    """{rater name: {"rating"|"retest": {candidate pk: score}}, rater name: label suffix}."""
    design = _design(campaign)
    kw = {"n_raters": sessions, "profile": options.profile, "bad_raters": options.bad}
    kw["scale"] = protocol.simulated_scale
    first = simulate_votes(design, seed=options.seed, **kw)
    # Retest showings get an independent second draw of the same panel.
    again = simulate_votes(design, seed=options.seed + 1, **kw)
    lookup = design.set_index(KEY)["candidate"]

    def by_candidate(votes):
        candidates = lookup.loc[pd.MultiIndex.from_frame(votes[KEY])]
        return dict(zip(candidates, votes["score"], strict=True))

    panel = {}
    for name, votes in first.groupby("rater", sort=True):
        scores = {"rating": by_candidate(votes), "retest": by_candidate(again[again.rater == name])}
        panel[name] = (votes["simulated_as"].iloc[0], scores)
    return panel


def _new_session(campaign, name, kind):
    # `name` is the simulated panel's own id for the rater; the label counts the campaign's.
    existing = campaign.raters.filter(platform=Rater.SIMULATED).count()
    now = timezone.now()
    return Rater.objects.create_with_trials(
        campaign,
        label=f"simulated {existing + 1:02d} ({kind})",
        platform=Rater.SIMULATED,
        consented_at=now,
        calibrated_at=now,
    )


def rated_sessions(protocol, campaign, sessions, options):
    """ACR/DCR: each simulated session scores every trial at once (a bulk `record_votes`)."""
    added = 0
    with transaction.atomic():
        for name, (kind, scores) in _panel(protocol, campaign, sessions, options).items():
            rater = _new_session(campaign, name, kind)
            trials = rater.trials.values_list("position", "kind", "candidate_id")
            added += rater.record_votes({p: scores[k][c] for p, k, c in trials})
    return added


def paired_sessions(protocol, campaign, sessions, options):
    """Paired comparison: Thurstone observers choose between the two versions
    (study.analysis.simulate_pc: latent qualities from the paper's MOS, method x image and
    method x rater interactions); a method the paper did not rate is preferred by no one. An
    active design chooses each pair from the votes so far, so its sessions answer one trial at
    a time, each pair chosen as the page would choose it; the answers are the same either way.
    """
    added = 0
    with transaction.atomic():
        for n in range(sessions):
            rater = _new_session(campaign, n, "paired")
            trials = list(rater.trials.select_related("candidate__image__dataset"))
            if any(t.pair_pending for t in trials):
                for trial in trials:
                    protocol.before_show(rater, [trial])
                    if trial.repeat:
                        trial.refresh_from_db(fields=["candidate", "partner"])  # its original's
                    added += rater.record_votes(_choices(rater, [trial], options))
            else:
                added += rater.record_votes(_choices(rater, trials, options))
    return added


def _choices(rater, trials, options):
    """{position: 1 (A) or 2 (B)} of simulated rater `rater` on `trials`."""
    slugs = dict(
        Candidate.objects.filter(campaign=rater.campaign).values_list("pk", "method__slug")
    )
    pairs = pd.DataFrame(
        [
            {
                "rater": f"r{rater.pk}",
                "dataset": t.candidate.image.dataset.name,
                "image": t.candidate.image.name,
                "method_a": slugs[t.candidate_id],
                "method_b": slugs[t.partner_id],
                "draw": t.repeat,
            }
            for t in trials
        ]
    )
    answers = simulated_choices(pairs, seed=options.seed, profile=options.profile)
    chose_a = answers["choice"] == answers["method_a"]
    return {t.position: 1 if a else 2 for t, a in zip(trials, chose_a, strict=True)}
