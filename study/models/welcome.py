"""What a rater reads before the first image: the consent text with the session's length, and
the instructions, both in the words of the campaign's protocol unless the researcher wrote
their own."""

from django.db.models import Count

from study.models.campaign import Candidate
from study.models.order import retest_count
from study.models.session import Rater, Trial
from study.models.texts import ACR_TASK, DEFAULT_CONSENT, DEFAULT_INSTRUCTIONS

# A rater's time per vote before any is measured (pilots of the SRGAN protocol: 4-8 s).
PILOT_SECONDS_PER_VOTE = 6.0


def consent_for_display(campaign):
    """The consent text with {minutes} filled in from the session length estimate; the default
    text says what the campaign's protocol asks ("rate the quality" only where it does)."""
    text = campaign.consent_text
    if text == DEFAULT_CONSENT:
        text = text.replace(ACR_TASK, campaign.kind.task)
    if "{minutes}" not in text:
        return text
    minutes = session_estimate(campaign)[0]
    text = text.replace("{minutes} minutes", f"{minutes} minute" + "s" * (minutes != 1))
    return text.replace("{minutes}", str(minutes))


def instructions_for(campaign):
    """The campaign's instructions; the default text follows its protocol."""
    if campaign.instructions_text != DEFAULT_INSTRUCTIONS:
        return campaign.instructions_text
    return campaign.kind.instructions


def session_estimate(campaign):
    """(minutes, trials, seconds per vote, measured?) for one rater's session.

    Trials: what the protocol asks per session (candidates, or comparisons) plus retests plus
    the calibration examples. Seconds per vote: the median viewing time of people's votes (by
    the server's clock) once 20 exist, else a pilot's typical 6 s.
    """
    rated = campaign.candidates.filter(role=Candidate.RATING, status=Candidate.DONE).count()
    if not rated:
        rated = campaign.datasets.aggregate(n=Count("images"))["n"] * campaign.methods.count()
    rated = campaign.kind.items_per_session(campaign, rated)
    trials = rated + retest_count(rated, campaign.retest_share)
    if campaign.calibration_dataset_id:
        trials += min(campaign.calibration_images, campaign.calibration_dataset.images.count())
    # The (upper) median in the database: the welcome page asks, and a paper-size campaign has
    # tens of thousands of votes, so two small queries instead of fetching every duration.
    timed = Trial.objects.filter(rater__campaign=campaign, server_ms__isnull=False).exclude(
        rater__platform__in=Rater.NOT_PEOPLE
    )
    n = timed.count()
    measured = n >= 20
    seconds = PILOT_SECONDS_PER_VOTE
    if measured:
        seconds = timed.order_by("server_ms").values_list("server_ms", flat=True)[n // 2] / 1000
    return max(1, round(trials * seconds / 60)), trials, seconds, measured
