"""Simulated raters: pilot sessions added to a live campaign by its protocol's simulated rater
(`Protocol.simulate`, study.protocols.simulation). Their sessions have platform "simulated",
which every export carries (`rater_platform`), so they can never pass for people."""

from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max

from study.analysis.simulate import known_profile
from study.protocols.simulation import Options

BATCH_STRIDE = 1_000_003  # a prime far beyond any seed a researcher types


def unknown_methods(campaign):
    """The campaign's methods simulated raters know no profile for (the SRGAN paper did not
    rate them): their simulated votes are placeholders and reports give no verdict on them."""
    return sorted(slug for slug in campaign.methods.values_list("slug", flat=True)
                  if not known_profile(slug))  # fmt: skip


def caveat(campaign):
    """What the researcher is told after adding simulated raters ("" when nothing)."""
    unknown = unknown_methods(campaign)
    if not unknown:
        return ""
    return (
        f"No simulated profile for {', '.join(unknown)} (the SRGAN paper did not rate "
        "them): their simulated votes are placeholders, and the report gives no verdict on them."
    )


def add_simulated_raters(campaign, raters, profile="paper", bad=2, seed=0, mix_with_real=False):
    """Add `raters` finished simulated sessions (`bad` of them careless) to a live campaign.

    Returns the number of votes stored. Raises ValueError, storing nothing, when the campaign
    is not live, when `raters` < 1, or when people have voted already and `mix_with_real` is
    False (simulated votes would be mixed into their study).
    """
    refused = campaign.refusal("simulate")
    if refused:
        raise ValueError(refused)
    if raters < 1:
        raise ValueError("the number of simulated raters must be at least 1")
    people = campaign.raters.people().filter(trials__score__isnull=False)
    if not mix_with_real and people.exists():
        raise ValueError(
            f"campaign {campaign.name} already has votes from {people.distinct().count()} "
            "real rater(s): simulated votes would be mixed into their study (the exports "
            "label them rater_platform=simulated). Use a copy of the campaign, or allow mixing "
            "(simulate_raters --mix-with-real-votes) if that is what you want."
        )
    # A second batch with the same seed draws new raters, not the first batch again (that would
    # narrow every interval with copies); batches stay reproducible in the order they were added.
    batch = campaign.raters.simulated().count()
    before = campaign.raters.aggregate(last=Max("pk"))["last"] or 0
    number = len(simulated_batches(campaign)) + 1
    with transaction.atomic():
        votes = campaign.kind.simulate(
            campaign, raters, Options(profile, bad, seed + BATCH_STRIDE * batch)
        )
        # Each session remembers its batch, so the next one can say which seeds were used.
        campaign.raters.simulated().filter(pk__gt=before).update(
            platform_data={"batch": number, "seed": seed, "profile": profile}
        )
    return votes


@dataclass(frozen=True)
class Batch:
    number: int
    seed: int | None  # None: added before batches recorded their seed
    raters: int


def simulated_batches(campaign):
    """The campaign's batches of simulated raters, in the order they were added."""
    rows = campaign.raters.simulated().values_list("platform_data", flat=True)
    counts = Counter((d or {}).get("batch", 0) for d in rows)
    seeds = {(d or {}).get("batch", 0): (d or {}).get("seed") for d in rows}
    return [Batch(n, seeds[n], counts[n]) for n in sorted(counts)]


def next_seed(campaign, batches=None):
    """A seed no batch of this campaign used yet: the forms' default."""
    batches = simulated_batches(campaign) if batches is None else batches
    used = [b.seed for b in batches if b.seed is not None]
    return max(used) + 1 if used else 0


def seed_warning(campaign, seed):
    """What to tell the researcher before a batch repeats a seed ("" for a new seed)."""
    earlier = [b for b in simulated_batches(campaign) if b.seed == seed]
    if not earlier:
        return ""
    which = ", ".join(f"batch {b.number} ({b.raters} raters)" for b in earlier)
    return (
        f"Seed {seed} was used already by {which} of {campaign.name}. A new batch with it draws "
        "different raters, not copies (each batch offsets its seed), but to tell batches apart "
        f"in your notes choose an unused seed, such as {next_seed(campaign)}."
    )
