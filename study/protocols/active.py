"""Active sampling on the rater's page: the pair a trial compares is chosen when the page first
needs it (to show it, or to prefetch it as the next one), from every comparison answered by
then, as the pair of that image with the largest expected information gain
(study.analysis.active_sampling, ASAP-style).

The posterior is kept per process in Django's cache, keyed by campaign, with the number of votes
it has seen: a page replays only the votes cast since (about 0.01 ms each; those of the last
minute are re-read so that one committed late is not missed), and a fresh process replays the
whole log once (0.34 s for 30,000 votes). A trial's retest takes the pair its
original was given. Choosing is reproducible from the campaign seed, the rater and the vote log.
"""

import zlib
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction

from study.analysis.active_sampling import new_state, next_pairs, update
from study.models import Candidate, Trial

STATE_TIMEOUT = 3600


# A vote's answered_at is set before its transaction commits, so votes can become visible out
# of that order; re-reading this margin of recent votes (and skipping those already applied)
# catches a late one. A count that still disagrees rebuilds the state from the whole log.
MARGIN = timedelta(seconds=60)


def _answered(campaign):
    return Trial.objects.for_analysis(campaign).filter(partner__isnull=False)


def _replay(state, rows):
    for _pk, rater, ds, image, a, b, score, _at in rows:
        update(state, str(rater), ds, image, a, b, a if score == 1 else b)


def _fresh_state(campaign):
    rows = campaign.candidates.filter(role=Candidate.RATING).values_list(
        "image__dataset__name", "image__name", "method__slug"
    )
    images = sorted({(ds, image) for ds, image, _ in rows})
    return new_state(images, sorted({slug for *_, slug in rows}))


def _votes(queryset):
    return list(
        queryset.order_by("answered_at", "pk").values_list(
            "pk",
            "rater_id",
            "candidate__image__dataset__name",
            "candidate__image__name",
            "candidate__method__slug",
            "partner__method__slug",
            "score",
            "answered_at",
        )
    )


def _state(campaign):
    """The campaign's posterior after every answered comparison, cached and brought up to date:
    one count query when no vote arrived since, else the recent votes only."""
    key = f"srmos-pair-state-{campaign.pk}"
    cached = cache.get(key)
    answered = _answered(campaign)
    total = answered.count()
    if cached is not None and cached["n"] == total:
        return cached["state"]
    if cached is not None and cached["last"] is not None and cached["n"] < total:
        state, applied, last = cached["state"], dict(cached["recent"]), cached["last"]
        rows = [
            r
            for r in _votes(answered.filter(answered_at__gte=last - MARGIN))
            if r[0] not in applied
        ]
        _replay(state, rows)
        n = cached["n"] + len(rows)
    else:
        rows = _votes(answered)
        state = _fresh_state(campaign)
        _replay(state, rows)
        n = len(rows)
        applied, last = {}, None
    if n != total:  # a vote slipped past the margin: replay the whole log in its order
        rows = _votes(answered)
        state, n, applied, last = _fresh_state(campaign), len(rows), {}, None
        _replay(state, rows)
    seen = {**applied, **{r[0]: r[7] for r in rows}}  # pk -> answered_at
    last = max(seen.values()) if seen else None
    recent = {pk: at for pk, at in seen.items() if at >= last - MARGIN}
    cache.set(key, {"n": n, "state": state, "last": last, "recent": recent}, STATE_TIMEOUT)
    return state


def choose_pairs(rater, upcoming):
    """Give each trial of `upcoming` whose pair is still open its most informative pair (in
    place, and in the database, with its retest)."""
    open_trials = [t for t in upcoming if t.pair_pending]
    if not open_trials:
        return
    campaign = rater.campaign
    state = _state(campaign)
    seed = zlib.crc32(f"{campaign.seed}:{rater.seed}".encode())
    for trial in open_trials:
        image = trial.candidate.image
        proposed = next_pairs(
            state, n=1, seed=seed, rater=str(rater.pk), images=[(image.dataset.name, image.name)]
        ).iloc[0]
        by_slug = {
            c.method.slug: c
            for c in campaign.candidates.filter(image=image, role=Candidate.RATING).select_related(
                "method"
            )
        }
        a, b = by_slug[proposed["method_a"]], by_slug[proposed["method_b"]]
        _settle(trial, a, b)


def _settle(trial, a, b):
    placeholder = {trial.candidate_id, trial.partner_id}
    with transaction.atomic():
        won = Trial.objects.filter(pk=trial.pk, pair_pending=True).update(
            candidate=a, partner=b, pair_pending=False
        )
        if not won:  # another request chose it first: take what it chose
            trial.refresh_from_db()
            return
        retests = trial.rater.trials.filter(repeat=1, partner__isnull=False, shown_at__isnull=True)
        for retest in retests:
            if {retest.candidate_id, retest.partner_id} == placeholder:
                # The retest shows the chosen pair, sides swapped.
                Trial.objects.filter(pk=retest.pk).update(candidate=b, partner=a)
                break
    trial.candidate, trial.partner, trial.pair_pending = a, b, False
