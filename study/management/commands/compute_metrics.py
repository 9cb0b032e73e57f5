import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sr_models.metric_specs import METRICS
from study.generation import queue
from study.management.commands._helpers import get_campaign


class Command(BaseCommand):
    help = (
        "Compute a campaign's objective metrics that its made candidates lack (a metric added "
        "after generation, or one that failed), on the CPU workers; the images stay as they are."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign name or id")
        parser.add_argument(
            "--add",
            default="",
            help=f"comma-separated metrics to add to the campaign first ({', '.join(METRICS)})",
        )
        parser.add_argument("--wait", action="store_true", help="wait until every one is done")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait at most")

    def handle(self, campaign, add, wait, timeout, **options):
        campaign = get_campaign(campaign)
        added = [m.strip() for m in add.split(",") if m.strip()]
        unknown = [m for m in added if m not in METRICS]
        if unknown:
            raise CommandError(
                f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}"
            )
        if added:
            campaign.metrics = [*campaign.metrics, *(m for m in added if m not in campaign.metrics)]
            campaign.save(update_fields=["metrics"])
        with transaction.atomic():
            n = queue.queue_metrics(campaign)
        self.stdout.write(
            f"{n} candidates queued for {', '.join(campaign.metrics) or 'no metrics'}"
        )
        deadline = time.monotonic() + timeout
        while wait and n and queue.metrics_pending(campaign):
            if time.monotonic() > deadline:
                raise CommandError(f"timed out after {timeout:.0f} s; is a CPU worker running?")
            time.sleep(0.5)
        for name, (have, made, reason) in queue.metric_coverage(campaign).items():
            line = f"{name}: {have}/{made}" + (f" (missing: {reason})" if have < made else "")
            self.stdout.write(line)
