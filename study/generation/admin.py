"""Generation in the admin: the campaign page's panel (counts, time per method, ETA, stalls,
failures) with its Generate / Retry / Cancel buttons, the same three as list actions, and the
candidates' list."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from study.generation import queue
from study.generation.progress import generation_report
from study.models import Campaign, Candidate


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
        "compute_metrics",
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
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        if action in ACTIONS:
            self.run_generation_action(request, campaign, action)
        else:
            self.message_user(request, f"unknown action {action}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:study_campaign_change", args=[pk]))

    @admin.action(description="Compute missing metrics (images stay)", permissions=["change"])
    def compute_metrics(self, request, queryset):
        for campaign in queryset:
            self.run_generation_action(request, campaign, "metrics", prefix=f"{campaign}: ")

    @admin.display(description="metric coverage")
    def metric_coverage(self, obj):
        if not obj.pk or not obj.metrics:
            return "No metrics beyond PSNR/SSIM chosen."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
            (
                (name, have, made, reason)
                for name, (have, made, reason) in queue.metric_coverage(obj).items()
            ),
        )
        return format_html(
            '<table id="metric-coverage"><tr><th>metric</th><th>computed</th>'
            "<th>why some are missing</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="generation")
    def generation_panel(self, obj):
        if not obj.pk:
            return "Save the campaign, then generate its candidates."
        report = generation_report(obj)
        counts = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, v) for k, v in report.counts.items())
        )
        methods = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    m.method,
                    m.done,
                    "-" if m.mean_seconds is None else f"{m.mean_seconds:.2f} s",
                    _duration(m.total_seconds),
                )
                for m in report.methods
            ),
        )
        eta = _duration(report.eta_seconds) if report.remaining else "-"
        failures = format_html_join(
            "",
            "<li>{}/{} x {}: <code>{}</code></li>",
            ((d, i, m, (e.splitlines() or [""])[0]) for d, i, m, e in report.failures),
        )
        buttons = _panel_buttons(obj, report)
        stall = report.stall_message()
        warnings = format_html_join(
            "",
            '<p class="warning lr-warning">LR inputs differ. {}</p>',
            ((w,) for w in obj.lr_warnings()),
        )
        return format_html(
            '{}{}<table id="progress">{}</table>'
            '<p id="eta">{} candidates; LR: {}; remaining {}, ETA {}</p>'
            '<table id="method-times"><tr><th>method</th><th>done</th><th>mean</th>'
            "<th>total</th></tr>{}</table>{}<p>{}</p>",
            format_html('<p class="errornote" id="stalled">{}</p>', stall) if stall else "",
            warnings,
            counts,
            report.total,
            obj.lr_description(),
            report.remaining,
            eta,
            methods,
            format_html('<p>Failures:</p><ul id="failures">{}</ul>', failures)
            if report.failures
            else "",
            buttons,
        )


def _panel_buttons(campaign, report):
    """Generate / Retry / Cancel (posted by the change form), and the viewer once images exist."""
    buttons = format_html_join(
        " ",
        '<button type="submit" class="button" formaction="{}" formmethod="post" '
        'formnovalidate name="generation" value="{}">{}</button>',
        (
            (reverse("admin:study_campaign_generation", args=[campaign.pk, a]), a, label)
            for a, label in [
                ("generate", "Generate"),
                ("retry", "Retry failed"),
                ("cancel", "Cancel"),
                ("metrics", "Compute missing metrics"),
            ]
        ),
    )
    if report.counts[Candidate.DONE]:
        buttons = format_html(
            '{} <a class="button" id="compare" href="{}">Compare candidates</a>',
            buttons,
            reverse("admin:study_campaign_viewer", args=[campaign.pk]),
        )
    return buttons


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
