from django.core.management.base import BaseCommand, CommandError

from study.analysis import VotesError
from study.management.commands._helpers import get_campaign
from study.reports import frames as reports


class Command(BaseCommand):
    help = (
        "Write a campaign's votes, MOS tables, statistics and plots into a folder (whole, or "
        "not at all), reading the votes in one snapshot."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign name or id")
        parser.add_argument("out_dir")

    def handle(self, campaign, out_dir, **options):
        campaign = get_campaign(campaign)
        try:
            paths = reports.export_report(campaign, out_dir)
        except (ValueError, VotesError) as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(
                f"The report could not be written to {out_dir}: {exc}. Nothing was written "
                "there (the report is written whole or not at all); free some space or choose "
                "another folder, and run the command again."
            ) from None
        for name in sorted(paths):
            self.stdout.write(str(paths[name]))
        self.stdout.write(self.style.SUCCESS(f"report of {campaign.name} written to {out_dir}"))
