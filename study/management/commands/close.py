from django.core.management.base import BaseCommand, CommandError

from study.management.commands._helpers import get_campaign


class Command(BaseCommand):
    help = "Close a live campaign: its links then show a friendly 'study has ended' page."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign name or id")

    def handle(self, campaign, **options):
        campaign = get_campaign(campaign)
        try:
            count = campaign.close()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(count.closed()))
