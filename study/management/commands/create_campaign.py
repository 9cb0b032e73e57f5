import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from study.models import Campaign, Dataset, Method

# Plain fields a spec may set; anything else in a spec is an error, never silently ignored.
SETTINGS = [
    "description",
    "scale",
    "kernel",
    "lr_source",
    "seed",
    "rater_links",
    "consent_text",
    "instructions_text",
    "display_policy",
    "calibration_images",
    "gold_items",
    "retest_share",
    "min_view_ms",
    "rushed_sessions",
    "vote_floor_ms",
    "break_every",
    "straightline_min_variance",
    "open_recruitment",
    "max_participants",
    "completion_url",
    "metrics",
    "protocol",
    "pair_design",
    "pairs_per_image",
]
FIELDS = {"name", "datasets", "methods", "calibration_dataset", *SETTINGS}


class Command(BaseCommand):
    help = (
        "Create a campaign from a JSON spec: name, datasets, methods (required) and any of "
        "calibration_dataset, " + ", ".join(SETTINGS) + "."
    )

    def add_arguments(self, parser):
        parser.add_argument("spec", help="path to a JSON file")

    def handle(self, spec, **options):
        try:
            with open(spec) as fh:
                data = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"{spec}: {exc}") from None
        if not isinstance(data, dict):
            raise CommandError(f"{spec}: expected a JSON object")
        unknown = set(data) - FIELDS
        if unknown:
            raise CommandError(
                f"{spec}: unknown field(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(FIELDS))}"
            )
        for key in ("name", "datasets", "methods"):
            if not data.get(key):
                raise CommandError(f"{spec}: {key!r} is required")
        datasets = self._lookup(Dataset, "name", data["datasets"], "dataset")
        methods = self._lookup(Method, "slug", data["methods"], "method")
        calibration_only = [d.name for d in datasets if d.is_calibration]
        if calibration_only:
            raise CommandError(
                f"{spec}: {', '.join(calibration_only)} is a calibration dataset: "
                "name it as calibration_dataset, not among the rated datasets"
            )
        if data.get("scale", 4) not in (2, 4, 8):
            raise CommandError(f"{spec}: scale must be 2, 4 or 8")
        campaign = Campaign(name=data["name"], **{k: data[k] for k in SETTINGS if k in data})
        problems = campaign.design_problems(methods)
        if problems:
            raise CommandError(f"{spec}: {' '.join(problems)}")
        if "calibration_dataset" in data:
            campaign.calibration_dataset = self._lookup(
                Dataset, "name", [data["calibration_dataset"]], "calibration dataset"
            )[0]
        try:
            campaign.full_clean()
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(f"{spec}: {problems}") from None
        with transaction.atomic():
            campaign.save()
            campaign.datasets.set(datasets)
            campaign.methods.set(methods)
        self.stdout.write(
            self.style.SUCCESS(f"created campaign {campaign.name} (id {campaign.pk})")
        )
        for warning in campaign.lr_warnings():
            self.stderr.write(self.style.WARNING(f"warning: LR inputs differ. {warning}"))

    def _lookup(self, model, field, values, what):
        found = {getattr(o, field): o for o in model.objects.filter(**{f"{field}__in": values})}
        missing = [v for v in values if v not in found]
        if missing:
            known = ", ".join(model.objects.values_list(field, flat=True))
            raise CommandError(f"unknown {what}(s): {', '.join(missing)} (known: {known})")
        return [found[v] for v in values]
