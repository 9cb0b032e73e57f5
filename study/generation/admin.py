"""Generation in the admin: the campaign page's panel (counts, time per method, ETA, stalls,
failures) with its Generate / Retry / Cancel buttons, the same three as list actions, and the
candidates' list."""

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse

from study.generation import queue
from study.generation.progress import generation_report
from study.models import Campaign, Candidate
from study.models.campaign import get_campaign_for


def _duration(seconds):
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


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
        if action == "generate" and n == 0 and campaign.status == Campaign.READY:
            message = "Nothing to generate: all candidates are made. Launch the campaign."
        self.message_user(request, prefix + message.format(n=n))

    @admin.action(description="Generate candidates", permissions=["change"])
    def generate_candidates(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(request, campaign, "generate", prefix=f"{campaign}: ")

    @admin.action(description="Retry failed candidates", permissions=["change"])
    def retry_failed(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(request, campaign, "retry", prefix=f"{campaign}: ")

    @admin.action(
        description="Cancel generation (withdraw queued candidates)", permissions=["change"]
    )
    def cancel_generation(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(request, campaign, "cancel", prefix=f"{campaign}: ")

    def generation_view(self, request, pk, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = get_campaign_for(request, pk, change=True)
        if action in ACTIONS:
            self.run_generation_action(request, campaign, action)
        else:
            self.message_user(request, f"unknown action {action}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:study_campaign_change", args=[pk]))

    @admin.action(description="Compute missing metrics (images stay)", permissions=["change"])
    def queue_missing_metrics(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(request, campaign, "metrics", prefix=f"{campaign}: ")

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
        method_times = [
            (
                m.method,
                m.done,
                "-" if m.mean_seconds is None else f"{m.mean_seconds:.2f} s",
                _duration(m.total_seconds),
            )
            for m in report.methods
        ]
        context = {
            "report": report,
            "stall": report.stall_message(),
            "lr_warnings": obj.lr_warnings(),
            "lr_description": obj.lr_description(),
            "eta": _duration(report.eta_seconds) if report.remaining else "-",
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
        return render_to_string("admin/study/campaign/generation_panel.html", context)


# The panel's buttons (posted by the change form), one per generation action.
BUTTONS = [
    ("generate", "Generate"),
    ("retry", "Retry failed"),
    ("cancel", "Cancel"),
    ("metrics", "Compute missing metrics"),
]


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "campaign",
        "image",
        "method",
        "status",
        "psnr",
        "ssim",
        "attempts",
    ]
    list_filter = ["campaign", "status", "method"]
    readonly_fields = [f.name for f in Candidate._meta.fields]
