import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from study.models import Campaign, Dataset, Method

FIELDS = {"name", "description", "datasets", "methods", "scale", "kernel", "seed", "rater_links"}


class Command(BaseCommand):
    help = "Create a campaign from a JSON spec: name, datasets, methods, scale, seed, rater_links."

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
                f"{spec}: unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(FIELDS))}"
            )
        for key in ("name", "datasets", "methods"):
            if not data.get(key):
                raise CommandError(f"{spec}: {key!r} is required")
        datasets = self._lookup(Dataset, "name", data["datasets"], "dataset")
        methods = self._lookup(Method, "slug", data["methods"], "method")
        if Campaign.objects.filter(name=data["name"]).exists():
            raise CommandError(f"a campaign named {data['name']!r} exists already")
        for key in ("scale", "seed", "rater_links"):
            if key in data and not isinstance(data[key], int):
                raise CommandError(f"{spec}: {key!r} must be an integer")
        if data.get("scale", 4) not in (2, 4, 8):
            raise CommandError(f"{spec}: scale must be 2, 4 or 8")
        with transaction.atomic():
            campaign = Campaign.objects.create(
                **{
                    k: data[k]
                    for k in ("name", "description", "scale", "kernel", "seed", "rater_links")
                    if k in data
                }
            )
            campaign.datasets.set(datasets)
            campaign.methods.set(methods)
        self.stdout.write(
            self.style.SUCCESS(f"created campaign {campaign.name} (id {campaign.pk})")
        )

    def _lookup(self, model, field, values, what):
        found = {getattr(o, field): o for o in model.objects.filter(**{f"{field}__in": values})}
        missing = [v for v in values if v not in found]
        if missing:
            known = ", ".join(model.objects.values_list(field, flat=True))
            raise CommandError(f"unknown {what}(s): {', '.join(missing)} (known: {known})")
        return [found[v] for v in values]
