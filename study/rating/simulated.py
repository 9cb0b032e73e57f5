"""Simulated raters: pilot sessions added to a live campaign by its protocol's simulated rater
(`Protocol.simulate`, study.protocols.simulation). Their sessions have platform "simulated",
which every export carries (`rater_platform`), so they can never pass for people."""

from study.analysis.simulate import known_profile
from study.models import Campaign
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
    if campaign.status != Campaign.LIVE:
        raise ValueError(f"campaign {campaign.name} is {campaign.status}: launch it first")
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
    return campaign.kind.simulate(
        campaign, raters, Options(profile, bad, seed + BATCH_STRIDE * batch)
    )
