from django.core.management.base import BaseCommand, CommandError

from study.analysis.simulate import PROFILES
from study.management.commands._helpers import get_campaign
from study.rating.simulated import add_simulated_raters, caveat, next_seed, seed_warning


class Command(BaseCommand):
    help = (
        "Add simulated raters who vote around the SRGAN paper's published MOS, with per-rater "
        "bias and noise, some deliberately bad (random or straight-lining). For tests, "
        "benchmarks and demos: their sessions are labelled 'simulated'."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign name or id (must be live)")
        parser.add_argument("--raters", type=int, default=26)
        parser.add_argument("--profile", default="paper", choices=sorted(PROFILES))
        parser.add_argument("--bad", type=int, default=2, help="how many of them are bad raters")
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="the batch's seed (default: one no earlier batch of the campaign used)",
        )
        parser.add_argument(
            "--mix-with-real-votes",
            action="store_true",
            help="allow simulated raters in a campaign where people have already voted",
        )

    def handle(self, campaign, raters, profile, bad, seed, mix_with_real_votes, **options):
        campaign = get_campaign(campaign)
        refused = campaign.refusal("simulate")
        if refused:
            raise CommandError(refused)
        if seed is None:
            seed = next_seed(campaign)
        elif seed_warning(campaign, seed):
            self.stderr.write(self.style.WARNING(f"warning: {seed_warning(campaign, seed)}"))
        try:
            added = add_simulated_raters(
                campaign, raters, profile, bad, seed, mix_with_real=mix_with_real_votes
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"added {raters} simulated raters ({bad} bad) to {campaign.name}: {added} votes "
                f"(seed {seed})"
            )
        )
        if caveat(campaign):
            self.stderr.write(self.style.WARNING(f"warning: {caveat(campaign)}"))
