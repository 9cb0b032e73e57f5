"""Generation in the admin: the campaign page's panel (counts, time per method, ETA, stalls,
failures) with its Generate / Retry / Cancel buttons, the same three as list actions, and the
candidates' list."""

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse

from study.generation import queue
from study.generation.progress import duration, generation_report
from study.models import Candidate
from study.models.campaign import get_campaign_for

# Each generation action: (what it does to one campaign, what to tell the researcher).
ACTIONS = {
    "generate": (queue.start_generation, "{n} candidates queued for the workers."),
    "retry": (queue.retry_failed, "{n} failed candidates queued again."),
    "cancel": (queue.cancel_generation, "{n} queued candidates withdrawn."),
    "metrics": (queue.queue_metrics, "{n} candidates queued for their missing metrics."),
}


class CampaignGenerationMixin:
    """The generation panel and its actions, for CampaignAdmin: the panel's buttons and the list
    actions run the same code and say the same thing."""

    generation_actions = [
        "generate_candidates",
        "retry_failed",
        "cancel_generation",
        "queue_missing_metrics",
    ]

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/generation/status/",
                self.admin_site.admin_view(self.generation_status_view),
                name="study_campaign_generation_status",
            ),
            path(
                "<int:pk>/generation/<str:action>/",
                self.admin_site.admin_view(self.generation_view),
                name="study_campaign_generation",
            ),
        ]
        return urls + super().get_urls()

    def run_generation_action(self, request, campaign, action, prefix=""):
        run, message = ACTIONS[action]
        try:
            n = run(campaign)
        except ValueError as exc:
            self.message_user(request, f"{prefix}{exc}", messages.ERROR)
            return
        if action == "generate" and n == 0:
            message = campaign.nothing_to_do("generate") or message
        self.message_user(request, prefix + message.format(n=n))

    @admin.action(description="Generate candidates", permissions=["change"])
    def generate_candidates(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(
                request, campaign, "generate", prefix=f"Campaign {campaign}: "
            )

    @admin.action(description="Retry failed candidates", permissions=["change"])
    def retry_failed(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(request, campaign, "retry", prefix=f"Campaign {campaign}: ")

    @admin.action(
        description="Cancel generation (withdraw queued candidates)", permissions=["change"]
    )
    def cancel_generation(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(request, campaign, "cancel", prefix=f"Campaign {campaign}: ")

    def generation_view(self, request, pk, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = get_campaign_for(request, pk, change=True)
        if action in ACTIONS:
            self.run_generation_action(request, campaign, action)
        else:
            self.message_user(request, f"Unknown generation action {action!r}.", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:study_campaign_change", args=[pk]))

    @admin.action(description="Compute missing metrics (images stay)", permissions=["change"])
    def queue_missing_metrics(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(
                request, campaign, "metrics", prefix=f"Campaign {campaign}: "
            )

    @admin.display(description="metric coverage")
    def metric_coverage(self, obj):
        if not obj.pk or not obj.metrics:
            return "No metrics beyond PSNR/SSIM chosen."
        rows = [
            (name, have, made, reason)
            for name, (have, made, reason) in queue.metric_coverage(obj).items()
        ]
        return render_to_string("admin/study/campaign/metric_coverage.html", {"rows": rows})

    @admin.display(description="generation")
    def generation_panel(self, obj):
        if not obj.pk:
            return "Save the campaign, then generate its candidates."
        report = generation_report(obj)
        context = {
            **self.generation_panel_context(obj, report),
            "follow_url": ""
            if report.settled
            else reverse("admin:study_campaign_generation_status", args=[obj.pk]),
        }
        return render_to_string("admin/study/campaign/generation_panel.html", context)

    def generation_panel_context(self, obj, report):
        method_times = [
            (m.method, m.done, duration(m.mean_seconds), duration(m.total_seconds))
            for m in report.methods
        ]
        return {
            "report": report,
            "stall": report.stall_message(),
            "lr_warnings": obj.lr_warnings(),
            "lr_description": obj.lr_description(),
            "eta": report.eta_text(),
            "waiting": report.ready_text(),
            "method_times": method_times,
            # The first line of each error: the whole trace is on the candidate's page.
            "failures": [(d, i, m, (e.splitlines() or [""])[0]) for d, i, m, e in report.failures],
            "buttons": [
                (action, label, reverse("admin:study_campaign_generation", args=[obj.pk, action]))
                for action, label in BUTTONS
            ],
            "compare_url": reverse("admin:study_campaign_viewer", args=[obj.pk])
            if report.counts[Candidate.DONE]
            else "",
        }

    def generation_status_view(self, request, pk):
        """The campaign page's poll (static/study/follow.js): the generation panel, the metric
        coverage and the status as they are now; once settled, the page's action row too."""
        campaign = get_campaign_for(request, pk)
        report = generation_report(campaign)
        body = render_to_string(
            "admin/study/campaign/_generation_panel_body.html",
            self.generation_panel_context(campaign, report),
        )
        answer = {
            "settled": report.settled,
            # A stall heals within minutes, not seconds: ask less often meanwhile.
            "interval": 5000 if report.stalled else 1500,
            "html": {
                "#generation-panel": body,
                ".field-metric_coverage .readonly": str(self.metric_coverage(campaign)),
            },
            "text": {".field-status .readonly": campaign.get_status_display()},
            "counts": report.counts,
            "remaining": report.remaining,
            "eta": report.eta_text(),
            "metrics_waiting": report.metrics_waiting,
        }
        if (
            report.settled
            and hasattr(self, "action_row")
            and self.has_change_permission(request, campaign)
        ):
            context = {**self.action_row(campaign), "request": request}
            answer["outer"] = {
                "#campaign-actions": render_to_string(
                    "admin/study/campaign/_actions.html", context, request=request
                )
            }
        return JsonResponse(answer)


# The panel's buttons (posted by the change form), one per generation action.
BUTTONS = [
    ("generate", "Generate"),
    ("retry", "Retry failed"),
    ("cancel", "Cancel"),
    ("metrics", "Compute missing metrics"),
]


# Rounded for the page as papers print them; exports keep every digit.
ROUNDED = {
    "psnr": "psnr_db",
    "ssim": "ssim_value",
    "seconds": "worker_time",
    "metrics": "metric_values",
}


def metric_text(value):
    """A metric value for a page: four significant digits ("0.1234", "31.42")."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "campaign",
        "image",
        "method",
        "status",
        "psnr_db",
        "ssim_value",
        "attempts",
    ]
    list_filter = ["campaign", "status", "method"]
    readonly_fields = [ROUNDED.get(f.name, f.name) for f in Candidate._meta.fields]
    fields = readonly_fields  # a record: the rounded displays stand in for their fields

    @admin.display(description="PSNR", ordering="psnr")
    def psnr_db(self, obj):
        return "-" if obj.psnr is None else f"{obj.psnr:.2f} dB"

    @admin.display(description="SSIM", ordering="ssim")
    def ssim_value(self, obj):
        return "-" if obj.ssim is None else f"{obj.ssim:.4f}"

    @admin.display(description="worker time")
    def worker_time(self, obj):
        return duration(obj.seconds)

    @admin.display(description="metrics")
    def metric_values(self, obj):
        values = obj.metrics or {}
        return ", ".join(f"{name} {metric_text(v)}" for name, v in sorted(values.items())) or "-"
