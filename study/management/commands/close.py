from django.core.management.base import BaseCommand, CommandError

from study.management.commands._helpers import get_campaign
from study.models import Campaign


class Command(BaseCommand):
    help = "Close a live campaign: its links then show a friendly 'study has ended' page."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign name or id")

    def handle(self, campaign, **options):
        campaign = get_campaign(campaign)
        if campaign.status != Campaign.LIVE:
            raise CommandError(f"campaign {campaign.name} is {campaign.status}, not live")
        campaign.close()
        answered = campaign.raters.filter(completed_at__isnull=False).count()
        self.stdout.write(
            self.style.SUCCESS(f"{campaign.name} is closed; {answered} sessions were completed")
        )
