"""The live report's worker task (the ``cpu`` queue): compute a campaign's report into its cache
when votes arrived (study.models.report_cache publishes it by name, at most
one at a time per campaign and one more for the votes that arrive meanwhile)."""

from celery import shared_task

from study.reports import live


@shared_task(name="study.reports.tasks.refresh_report", acks_late=True)
def refresh_report(campaign_id):
    """Compute and store the campaign's report; quietly nothing when another computation holds
    it (that one publishes again for the votes it missed) or the campaign is gone."""
    live.refresh(campaign_id)
