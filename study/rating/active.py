"""Active sampling on the rater's page: the pair a trial compares is chosen when the page first
needs it (to show it, or to prefetch it as the next one), from every comparison answered by
then, as the pair of that image with the largest expected information gain
(study.analysis.active_sampling, ASAP-style).

The posterior is kept per process in Django's cache, keyed by campaign, with the number of votes
it has seen: a page replays only the votes cast since (about 0.01 ms each), and a fresh process
replays the whole log once (0.34 s for 30,000 votes). A trial's retest takes the pair its
original was given. Choosing is reproducible from the campaign seed, the rater and the vote log.
"""

import zlib

from django.core.cache import cache
from django.db import transaction

from study.analysis.active_sampling import new_state, next_pairs, update
from study.models import Candidate, Trial
from study.models.session import comparison_votes

STATE_TIMEOUT = 3600


def _state(campaign):
    """The campaign's posterior after every answered comparison, cached and brought up to date:
    one count query when no vote arrived since, else the new votes only."""
    key = f"srmos-pair-state-{campaign.pk}"
    seen, state = cache.get(key) or (0, None)
    total = (
        Trial.objects.answered()
        .filter(rater__campaign=campaign, partner__isnull=False)
        .exclude(rater__platform="preview")
        .count()
    )
    if state is not None and seen == total:
        return state
    if state is None or seen > total:
        rows = campaign.candidates.filter(role=Candidate.RATING).values_list(
            "image__dataset__name", "image__name", "method__slug"
        )
        images = sorted({(ds, image) for ds, image, _ in rows})
        state, seen = new_state(images, sorted({slug for *_, slug in rows})), 0
    for row in comparison_votes(campaign, offset=seen).itertuples(index=False):
        update(
            state, str(row.rater), row.dataset, row.image, row.method_a, row.method_b, row.choice
        )
        seen += 1
    cache.set(key, (seen, state), STATE_TIMEOUT)
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
