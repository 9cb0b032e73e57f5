"""Which objective metrics a campaign computes (the names, without torch: the web only lists and
checks them; the workers compute them with sr_models.metric_panel)."""

from django.core.exceptions import ValidationError

from sr_models.metric_specs import DEFAULT_PANEL, METRICS


def default_metrics():
    return list(DEFAULT_PANEL)


def metric_choices():
    return [(name, f"{spec.label} ({spec.direction} is better)") for name, spec in METRICS.items()]


def check_metrics(value):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError('metrics must be a list of metric names, e.g. ["gmsd", "haarpsi"]')
    unknown = [v for v in value if v not in METRICS]
    if unknown:
        raise ValidationError(
            f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}"
        )
