from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from study import reports
from study.admin_generation import CampaignGenerationMixin, DatasetImportMixin, MethodResultsMixin
from study.analysis import VotesError
from study.models import Campaign, Candidate, Dataset, Method, Rater, SourceImage, Trial


class SourceImageInline(admin.TabularInline):
    model = SourceImage
    fields = ["name", "original_name", "width", "height", "sha256", "notes"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Dataset)
class DatasetAdmin(DatasetImportMixin, admin.ModelAdmin):
    list_display = ["name", "is_calibration", "image_count", "created_at"]
    inlines = [SourceImageInline]

    @admin.display(description="images")
    def image_count(self, obj):
        return obj.images.count()


@admin.register(SourceImage)
class SourceImageAdmin(admin.ModelAdmin):
    list_display = ["name", "dataset", "width", "height", "notes"]
    list_filter = ["dataset"]
    readonly_fields = ["sha256", "width", "height", "original_name", "notes"]


@admin.register(Method)
class MethodAdmin(MethodResultsMixin, admin.ModelAdmin):
    list_display = ["slug", "name", "kind"]
    list_filter = ["kind"]


@admin.register(Campaign)
class CampaignAdmin(CampaignGenerationMixin, admin.ModelAdmin):
    list_display = ["name", "status", "scale", "kernel", "progress_summary", "created_at"]
    list_filter = ["status"]
    filter_horizontal = ["datasets", "methods"]
    readonly_fields = [
        "status",
        "progress_table",
        "rater_links_list",
        "recruitment_link",
        "exports",
        "launched_at",
        "closed_at",
    ]
    actions = ["generate_candidates", "retry_failed", "launch", "close"]
    fieldsets = [
        (None, {"fields": ["name", "description", "datasets", "methods"]}),
        ("Design", {"fields": ["scale", "kernel", "seed", "rater_links"]}),
        ("State", {"fields": ["status", "progress_table", "launched_at", "closed_at"]}),
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

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/export/<str:kind>/",
                self.admin_site.admin_view(self.export_view),
                name="study_campaign_export",
            ),
            path(
                "<int:pk>/report/",
                self.admin_site.admin_view(self.report_view),
                name="study_campaign_report",
            ),
        ]
        return urls + super().get_urls()

    @admin.display(description="progress")
    def progress_summary(self, obj):
        p = obj.progress()
        total = sum(p.values())
        return f"{p['done']}/{total} done" + (f", {p['failed']} failed" if p["failed"] else "")

    @admin.display(description="candidates")
    def progress_table(self, obj):
        if not obj.pk:
            return "-"
        p = obj.progress()
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", p.items())
        failures = obj.candidates.filter(status=Candidate.FAILED).select_related("image", "method")[
            :20
        ]
        errors = format_html_join(
            "",
            "<li>{} x {}: {}</li>",
            (
                (c.image, c.method.slug, c.error.splitlines()[0] if c.error else "")
                for c in failures
            ),
        )
        return format_html(
            '<table id="progress">{}</table>{}',
            rows,
            format_html("<p>Failures:</p><ul>{}</ul>", errors) if failures else "",
        )

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

    @admin.display(description="exports")
    def exports(self, obj):
        if not obj.pk:
            return "-"
        links = [(reverse("admin:study_campaign_report", args=[obj.pk]), "Live report")] + [
            (reverse("admin:study_campaign_export", args=[obj.pk, kind]), label)
            for kind, label in [
                ("links", "Rater links (CSV)"),
                ("votes", "Raw votes (CSV)"),
                ("mos", "MOS per method (CSV)"),
                ("report", "Full report (zip)"),
            ]
        ]
        return format_html_join(" | ", '<a href="{}">{}</a>', links)

    def _campaign_for(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def report_view(self, request, pk):
        campaign = self._campaign_for(request, pk)
        context = {
            **self.admin_site.each_context(request),
            "campaign": campaign,
            "title": f"Report: {campaign}",
            "auto_refresh": campaign.status == Campaign.LIVE,
        }
        try:
            context.update(reports.report_context(campaign))
        except (ValueError, VotesError) as exc:
            context["error"] = str(exc)
        return TemplateResponse(request, "admin/study/campaign/report.html", context)

    def export_view(self, request, pk, kind):
        campaign = self._campaign_for(request, pk)
        if kind == "links":
            rows = [
                f"{r.pk},{request.build_absolute_uri(r.get_absolute_url())}"
                for r in campaign.raters.filter(platform="link")
            ]
            body, ctype, ext = "rater,url\n" + "\n".join(rows) + "\n", "text/csv", "rater-links.csv"
        elif kind == "votes":
            body, ctype, ext = (
                reports.votes_frame(campaign).to_csv(index=False),
                "text/csv",
                "votes.csv",
            )
        elif kind == "mos":
            body, ctype, ext = reports.mos_csv(campaign), "text/csv", "mos.csv"
        elif kind == "report":
            try:
                body = reports.report_zip(campaign)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponse(str(exc), status=409, content_type="text/plain")
            ctype, ext = "application/zip", "report.zip"
        else:
            return HttpResponse("unknown export", status=404)
        response = HttpResponse(body, content_type=ctype)
        response["Content-Disposition"] = f'attachment; filename="{campaign.name}-{ext}"'
        return response

    @admin.action(description="Generate candidates", permissions=["change"])
    def generate_candidates(self, request, queryset):
        for campaign in queryset:
            try:
                n = campaign.start_generation()
            except ValueError as exc:
                self.message_user(request, f"{campaign}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{campaign}: {n} candidates queued for the workers.")

    @admin.action(description="Retry failed candidates", permissions=["change"])
    def retry_failed(self, request, queryset):
        for campaign in queryset:
            self.message_user(
                request, f"{campaign}: {campaign.retry_failed()} failed candidates queued again."
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


class TrialInline(admin.TabularInline):
    model = Trial
    fields = ["position", "candidate", "score", "answered_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "campaign",
        "platform",
        "participant_id",
        "answered",
        "qc_flags",
        "vote_variance",
        "median_seconds",
        "completed_at",
    ]
    list_filter = ["campaign", "platform"]
    search_fields = ["participant_id", "label"]
    readonly_fields = [
        "token",
        "seed",
        "participant_id",
        "platform",
        "platform_data",
        "user_agent",
        "display_checks",
        "consented_at",
        "calibrated_at",
        "started_at",
        "completed_at",
        "quality_now",
    ]
    inlines = [TrialInline]

    def has_add_permission(self, request):
        # Sessions come from launching a campaign or from its recruitment link, with trials.
        return False

    def get_readonly_fields(self, request, obj=None):
        return ["campaign", *super().get_readonly_fields(request, obj)]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("campaign")

    def _quality(self, obj):
        # Finished sessions carry their summary; running ones are computed live, once per row
        # although three columns show it.
        if obj.completed_at and obj.qc:
            return obj.qc
        if not hasattr(obj, "_live_quality"):
            obj._live_quality = obj.quality()
        return obj._live_quality

    @admin.display(description="answered")
    def answered(self, obj):
        answered = obj.n_trials if obj.completed_at else self._quality(obj)["n_answered"]
        return f"{answered}/{obj.n_trials}"

    @admin.display(description="QC flags")
    def qc_flags(self, obj):
        return ", ".join(self._quality(obj)["flags"]) or "-"

    @admin.display(description="variance")
    def vote_variance(self, obj):
        variance = self._quality(obj)["variance"]
        return "-" if variance is None else f"{variance:.2f}"

    @admin.display(description="median s/vote")
    def median_seconds(self, obj):
        ms = self._quality(obj)["median_duration_ms"]
        return "-" if ms is None else f"{ms / 1000:.1f}"

    @admin.display(description="quality control")
    def quality_now(self, obj):
        return format_html_join("", "<div>{}: {}</div>", self._quality(obj).items())
