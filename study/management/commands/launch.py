from django.core.management.base import BaseCommand, CommandError

from study.management.commands._helpers import get_campaign


class Command(BaseCommand):
    help = "Make a ready campaign live and print its rater links."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign name or id")
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="prefix for the printed links"
        )

    def handle(self, campaign, base_url, **options):
        campaign = get_campaign(campaign)
        unchanged = campaign.nothing_to_do("launch")
        try:
            campaign.launch()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(unchanged or f"{campaign.name} is live"))
        for rater in campaign.raters.links():
            self.stdout.write(base_url.rstrip("/") + rater.get_absolute_url())
