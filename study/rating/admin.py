"""Raters in the admin: each session with its trials and its quality control, live."""

from django.contrib import admin
from django.utils.html import format_html_join

from study.models import Rater, Trial


class TrialInline(admin.TabularInline):
    model = Trial
    fields = ["position", "candidate", "partner", "score", "answered_at"]
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
