import pandas as pd
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from study.analysis.simulate import PROFILES, simulate_votes
from study.management.commands._helpers import get_campaign
from study.models import Campaign, Candidate, Rater, Trial, vote_flags


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
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--mix-with-real-votes",
            action="store_true",
            help="allow simulated raters in a campaign where people have already voted",
        )

    def handle(self, campaign, raters, profile, bad, seed, mix_with_real_votes, **options):
        campaign = get_campaign(campaign)
        if campaign.status != Campaign.LIVE:
            raise CommandError(f"campaign {campaign.name} is {campaign.status}: launch it first")
        if raters < 1:
            raise CommandError("--raters must be at least 1")
        people = campaign.raters.exclude(platform="simulated").filter(trials__score__isnull=False)
        if not mix_with_real_votes and people.exists():
            raise CommandError(
                f"campaign {campaign.name} already has votes from {people.distinct().count()} "
                "real rater(s): simulated votes would be mixed into their study (the exports "
                "label them rater_platform=simulated). Use a copy of the campaign, or pass "
                "--mix-with-real-votes if that is what you want."
            )
        rows = campaign.candidates.filter(role=Candidate.RATING, status=Candidate.DONE).values_list(
            "pk", "image__dataset__name", "image__name", "method__slug"
        )
        design = pd.DataFrame(list(rows), columns=["candidate", "dataset", "image", "method"])
        try:
            first = simulate_votes(
                design, n_raters=raters, profile=profile, seed=seed, bad_raters=bad
            )
            # Retest showings get an independent second draw of the same panel.
            again = simulate_votes(
                design, n_raters=raters, profile=profile, seed=seed + 1, bad_raters=bad
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        key = ["dataset", "image", "method"]
        lookup = design.set_index(key)["candidate"]
        existing = campaign.raters.filter(platform="simulated").count()
        now = timezone.now()
        added = 0
        with transaction.atomic():
            for name, votes in first.groupby("rater", sort=True):
                kind = votes["simulated_as"].iloc[0]
                rater = Rater.objects.create_with_trials(
                    campaign,
                    label=f"simulated {existing + int(name[1:]):02d} ({kind})",
                    platform="simulated",
                    consented_at=now,
                    calibrated_at=now,
                )
                scores = {
                    "rating": dict(
                        zip(
                            lookup.loc[pd.MultiIndex.from_frame(votes[key])],
                            votes["score"],
                            strict=True,
                        )
                    ),
                    "retest": dict(
                        zip(
                            lookup.loc[
                                pd.MultiIndex.from_frame(again.loc[again["rater"] == name, key])
                            ],
                            again.loc[again["rater"] == name, "score"],
                            strict=True,
                        )
                    ),
                }
                trials = list(rater.trials.all())
                for trial in trials:
                    trial.score = int(scores[trial.kind][trial.candidate_id])
                    trial.answered_at = now
                    trial.flags = vote_flags(trial.expected, trial.score, None, 0)
                Trial.objects.bulk_update(trials, ["score", "answered_at", "flags"], batch_size=500)
                added += len(trials)
                rater.started_at = rater.completed_at = now
                rater.qc = rater.quality()
                rater.save(update_fields=["started_at", "completed_at", "qc"])
        self.stdout.write(
            self.style.SUCCESS(
                f"added {raters} simulated raters ({bad} bad) to {campaign.name}: {added} votes"
            )
        )
