"""The admin, assembled: each stage of the data path brings its own admin module (datasets,
generation, rating, reports); the campaign page, which spans them all, is composed here."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from study.datasets import admin as datasets_admin  # noqa: F401  (registers its ModelAdmins)
from study.generation import (
    model_admin,  # noqa: F401  (registers ModelRegistrationAdmin)
    queue,
)
from study.generation.admin import CampaignGenerationMixin
from study.generation.viewer import CampaignViewerMixin
from study.models import Campaign
from study.models.design import DESIGN_FIELDS, DESIGN_M2M, DesignFrozen
from study.models.metrics import default_metrics, metric_choices
from study.rating import admin as rating_admin  # noqa: F401  (registers its ModelAdmins)
from study.rating.cockpit import CampaignCrowdMixin
from study.reports.admin import CampaignReportMixin


@admin.register(Campaign)
class CampaignAdmin(
    CampaignGenerationMixin,
    CampaignViewerMixin,
    CampaignCrowdMixin,
    CampaignReportMixin,
    admin.ModelAdmin,
):
    list_display = ["name", "status", "scale", "kernel", "progress_summary", "created_at"]
    list_filter = ["status"]
    filter_horizontal = ["datasets", "methods"]
    readonly_fields = [
        "status",
        "generation_panel",
        "rater_links_list",
        "recruitment_link",
        "exports",
        "metric_coverage",
        "launched_at",
        "closed_at",
        *CampaignCrowdMixin.crowd_fields,
    ]
    actions = [*CampaignGenerationMixin.generation_actions, "launch", "close", "clone"]
    fieldsets = [
        (None, {"fields": ["name", "description", "datasets", "methods"]}),
        (
            "Design",
            {
                "fields": [
                    "protocol",
                    ("pair_design", "pairs_per_image"),
                    "mos_campaign",
                    "scale",
                    "kernel",
                    "lr_source",
                    "seed",
                    "rater_links",
                ]
            },
        ),
        ("State", {"fields": ["status", "generation_panel", "launched_at", "closed_at"]}),
        ("Objective metrics", {"fields": ["metrics", "metric_coverage"]}),
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
                    "vote_floor_ms",
                    "break_every",
                ]
            },
        ),
        (
            "Quality control",
            {
                "fields": [
                    "gold_items",
                    "retest_share",
                    "straightline_min_variance",
                    "rushed_sessions",
                ]
            },
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
        (
            "Raters and results",
            {
                "fields": [
                    "crowd_tools",
                    "session_length",
                    "participants",
                    "rater_links_list",
                    "exports",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.design_frozen():
            fields += [f for f in (*DESIGN_M2M, *DESIGN_FIELDS) if f not in fields]
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs.setdefault("form", CampaignForm)
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None or not obj.design_frozen():
            return form

        class FrozenDesignForm(form):
            """Read-only fields are left out of the form, so Django would ignore a POST that
            changes them and say "changed successfully": refuse it instead, by name."""

            def clean(self):
                for field in frozen_fields_changed(obj, self.data):
                    raise ValidationError(str(DesignFrozen(obj.name, field)))
                return super().clean()

        return FrozenDesignForm

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "metrics" in form.changed_data:
            n = queue.queue_metrics(obj)
            if n:
                self.message_user(request, f"{n} candidates queued for their missing metrics.")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        for warning in form.instance.lr_warnings():
            self.message_user(request, f"LR inputs differ. {warning}", messages.WARNING)

    @admin.display(description="progress")
    def progress_summary(self, obj):
        p = obj.progress()
        total = sum(p.values())
        return f"{p['done']}/{total} done" + (f", {p['failed']} failed" if p["failed"] else "")

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
                f"{campaign} is live with {campaign.raters.links().count()} rater links.",
            )

    @admin.action(description="Close (end the study; votes are kept)", permissions=["change"])
    def close(self, request, queryset):
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/study/campaign/close_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Close these campaigns?",
                    "opts": self.model._meta,
                    "campaigns": queryset,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        for campaign in queryset:
            try:
                sessions, completed, votes = campaign.close()
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(
                request,
                f"{campaign} is closed: {completed} of {sessions} sessions completed, {votes} "
                "votes kept; its links now say the study has ended.",
            )
        return None

    @admin.action(description="Clone (a new draft with the same design)", permissions=["add"])
    def clone(self, request, queryset):
        if queryset.count() == 1 and request.POST.get("confirmed") != "yes":
            campaign = queryset.first()
            form = CloneForm(initial={"name": _free_name(f"{campaign.name}-copy")})
            return self._clone_form(request, campaign, form)
        if queryset.count() == 1:
            campaign = queryset.first()
            form = CloneForm(request.POST)
            if not form.is_valid():
                return self._clone_form(request, campaign, form)
            self._cloned(request, campaign, form.cleaned_data["name"], form.cleaned_data["seed"])
            return None
        for campaign in queryset:
            self._cloned(request, campaign, _free_name(f"{campaign.name}-copy"), None)
        return None

    def _clone_form(self, request, campaign, form):
        context = {
            **self.admin_site.each_context(request),
            "title": f"Clone {campaign}",
            "opts": self.model._meta,
            "campaign": campaign,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/study/campaign/clone.html", context)

    def _cloned(self, request, campaign, name, seed):
        copy = campaign.clone(name, seed=seed)
        if copy.kernel != campaign.kernel:
            self.message_user(
                request,
                f"{campaign}'s kernel {campaign.kernel!r} is not in the registry: the copy "
                f"uses {copy.kernel!r}; choose another on its page if needed.",
                messages.WARNING,
            )
        self.message_user(
            request,
            format_html(
                '{} cloned as <a href="{}">{}</a> (seed {}): a draft with the same design, open '
                "to changes; generate it when ready.",
                campaign,
                reverse("admin:study_campaign_change", args=[copy.pk]),
                copy,
                copy.seed,
            ),
        )


class CampaignForm(forms.ModelForm):
    # A form field of its own ignores the model field's default: the docs' panel (GMSD and
    # HaarPSI) is ticked on a new campaign here too, as create_campaign and the demo give it.
    metrics = forms.MultipleChoiceField(
        choices=metric_choices,
        initial=default_metrics,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Computed by the workers for every candidate, beside PSNR/SSIM; one ticked "
        "after generation is computed for the existing images (Compute missing metrics). "
        "LPIPS, DISTS and BRISQUE need weight files (SRMOS_METRIC_WEIGHTS, docs/analysis.md).",
    )

    def clean(self):
        """The protocol's requirements and the methods' scales, checked when the campaign is
        saved rather than when Generate is pressed."""
        data = super().clean()
        methods = data.get("methods")
        if methods is None:
            return data
        fields = ("name", "protocol", "scale", "pairs_per_image")
        probe = Campaign(**{f: data.get(f, getattr(self.instance, f)) for f in fields})
        for problem in probe.design_problems(methods):
            self.add_error("methods", problem)
        return data


class CloneForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="The new campaign's name.")
    seed = forms.IntegerField(
        required=False, help_text="A new seed for the raters' orders; empty keeps the same one."
    )

    def clean_name(self):
        name = self.cleaned_data["name"]
        if Campaign.objects.filter(name=name).exists():
            raise ValidationError(f"A campaign named {name} exists already: choose another name.")
        return name


def _free_name(base):
    name, n = base, 1
    while Campaign.objects.filter(name=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name[:100]


def frozen_fields_changed(campaign, data):
    """Design fields a POST tries to change on a campaign whose design is frozen."""
    for name in DESIGN_M2M:
        if name in data:
            current = {str(pk) for pk in getattr(campaign, name).values_list("pk", flat=True)}
            if set(data.getlist(name)) != current:
                yield name
    for name in DESIGN_FIELDS:
        if name not in data:
            continue
        field = Campaign._meta.get_field(name)
        try:
            # The form field reads a POST as the page sends it (a ticked box is "on").
            value = field.formfield().to_python(data[name])
        except ValidationError:
            yield name
            continue
        if field.is_relation:
            value = getattr(value, "pk", value)
        current = getattr(campaign, field.attname)
        if field.is_relation:
            value, current = str(value or ""), str(current or "")
        if value != current:
            yield name
