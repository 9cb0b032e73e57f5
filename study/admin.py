"""The admin, assembled: each stage of the data path brings its own admin module (datasets,
generation, rating, reports); the campaign page, which spans them all, is composed here."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from study.datasets import admin as datasets_admin  # noqa: F401  (registers its ModelAdmins)
from study.generation.admin import CampaignGenerationMixin
from study.models import Campaign
from study.rating import admin as rating_admin  # noqa: F401  (registers its ModelAdmins)
from study.reports.admin import CampaignReportMixin


@admin.register(Campaign)
class CampaignAdmin(CampaignGenerationMixin, CampaignReportMixin, admin.ModelAdmin):
    list_display = ["name", "status", "scale", "kernel", "progress_summary", "created_at"]
    list_filter = ["status"]
    filter_horizontal = ["datasets", "methods"]
    readonly_fields = [
        "status",
        "generation_panel",
        "rater_links_list",
        "recruitment_link",
        "exports",
        "launched_at",
        "closed_at",
    ]
    actions = [*CampaignGenerationMixin.generation_actions, "launch", "close"]
    fieldsets = [
        (None, {"fields": ["name", "description", "datasets", "methods"]}),
        ("Design", {"fields": ["scale", "kernel", "lr_source", "seed", "rater_links"]}),
        ("State", {"fields": ["status", "generation_panel", "launched_at", "closed_at"]}),
        (
            "Rater session",
            {
                "fields": [
                    "consent_text",
                    "instructions_text",
                    "display_policy",
                    "calibration_dataset",
                    "calibration_images",
                    "min_view_ms",
                    "break_every",
                ]
            },
        ),
        (
            "Quality control",
            {"fields": ["gold_items", "retest_share", "straightline_min_variance"]},
        ),
        (
            "Crowd recruitment",
            {
                "fields": [
                    "open_recruitment",
                    "recruitment_link",
                    "max_participants",
                    "completion_code",
                    "completion_url",
                ]
            },
        ),
        ("Raters and results", {"fields": ["rater_links_list", "exports"]}),
    ]

    # Once candidates exist, the design is what the images and the report say it was.
    DESIGN_FIELDS = [
        "datasets",
        "methods",
        "scale",
        "kernel",
        "seed",
        "calibration_dataset",
        "calibration_images",
        "gold_items",
        "retest_share",
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != Campaign.DRAFT:
            fields += [f for f in self.DESIGN_FIELDS if f not in fields]
        return fields

    @admin.display(description="progress")
    def progress_summary(self, obj):
        p = obj.progress()
        total = sum(p.values())
        return f"{p['done']}/{total} done" + (f", {p['failed']} failed" if p["failed"] else "")

    @admin.display(description="open recruitment link")
    def recruitment_link(self, obj):
        if not obj.pk:
            return "Appears once the campaign is saved."
        url = reverse("study:join", args=[obj.recruit_token])
        return format_html(
            '<code id="recruitment-link">{}</code><br>Prolific appends <code>?PROLIFIC_PID=...'
            "&amp;STUDY_ID=...&amp;SESSION_ID=...</code>; MTurk appends <code>workerId</code>, "
            "<code>assignmentId</code>, <code>hitId</code>, <code>turkSubmitTo</code>. "
            "Another platform: add <code>?participant=ID</code>.",
            url,
        )

    @admin.display(description="rater links")
    def rater_links_list(self, obj):
        if not obj.pk or obj.status not in (Campaign.LIVE, Campaign.CLOSED):
            return "Links appear here once the campaign is launched."
        raters = obj.raters.filter(platform="link")
        return format_html(
            '<ul id="rater-links">{}</ul>',
            format_html_join(
                "",
                '<li><a href="{0}">{0}</a></li>',
                ((r.get_absolute_url(),) for r in raters),
            ),
        )

    @admin.action(description="Launch (make live, create rater links)", permissions=["change"])
    def launch(self, request, queryset):
        for campaign in queryset:
            try:
                campaign.launch()
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(
                request,
                f"{campaign} is live with "
                f"{campaign.raters.filter(platform='link').count()} rater links.",
            )

    @admin.action(description="Close", permissions=["change"])
    def close(self, request, queryset):
        for campaign in queryset:
            campaign.close()
