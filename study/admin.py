"""The admin, assembled: each stage of the data path brings its own admin module (datasets,
generation, rating, reports); the campaign page, which spans them all, is composed here."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from study.datasets import admin as datasets_admin  # noqa: F401  (registers its ModelAdmins)
from study.generation import (
    model_admin,  # noqa: F401  (registers ModelRegistrationAdmin)
    queue,
)
from study.generation.admin import CampaignGenerationMixin
from study.generation.viewer import CampaignViewerMixin
from study.models import Campaign
from study.models.campaign import get_campaign_for
from study.models.design import DESIGN_FIELDS, DESIGN_M2M, DesignFrozen
from study.models.metrics import default_metrics, metric_choices
from study.rating import admin as rating_admin  # noqa: F401  (registers its ModelAdmins)
from study.rating.cockpit import CampaignCrowdMixin, SimulateForm
from study.rating.simulated import (
    add_simulated_raters,
    caveat,
    next_seed,
    seed_warning,
    simulated_batches,
)
from study.reports.admin import CampaignReportMixin

# The campaign page's row of actions, in the order of a study's life: (action, button label).
ACTION_ROW = [
    ("generate", "Generate"),
    ("launch", "Launch"),
    ("preview", "Preview"),
    ("simulate", "Simulate raters"),
    ("close", "Close"),
    ("clone", "Clone"),
    ("export", "Export report"),
]


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

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/do/<str:action>/",
                self.admin_site.admin_view(self.action_view),
                name="study_campaign_action",
            ),
        ]
        return urls + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        if campaign is not None and self.has_change_permission(request, campaign):
            extra_context = {**(extra_context or {}), **self.action_row(campaign)}
        return super().change_view(request, object_id, form_url, extra_context)

    def action_row(self, campaign):
        """The campaign page's buttons: each enabled only when its action can run now, and
        otherwise saying why in the campaign's own words (`Campaign.why_not`), as the list
        actions and the commands do."""
        facts = campaign.action_facts()
        row = []
        for action, label in ACTION_ROW:
            url = reverse("admin:study_campaign_action", args=[campaign.pk, action])
            if action == "preview":
                url = reverse("admin:study_campaign_preview", args=[campaign.pk])
            elif action == "export":
                url = reverse("admin:study_campaign_export", args=[campaign.pk, "report"])
            row.append(
                {
                    "action": action,
                    "label": label,
                    "why": campaign.why_not(action, facts),
                    "url": url,
                    "get": action == "export",
                    "new_tab": action == "preview",
                }
            )
        simulate = next(a for a in row if a["action"] == "simulate")
        batches = [] if simulate["why"] else simulated_batches(campaign)
        return {
            "campaign_actions": row,
            "simulate_seed": next_seed(campaign, batches),
            "simulate_batches": batches,
        }

    def action_view(self, request, pk, action):
        """One button of the campaign page's row (`action_row`): the same code and words as the
        list actions."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = get_campaign_for(request, pk, change=True)
        back = HttpResponseRedirect(reverse("admin:study_campaign_change", args=[pk]))
        if action == "generate":
            self.run_generation_action(request, campaign, "generate")
            return back
        if action == "simulate":
            data = {
                "raters": request.POST.get("simulate-raters", ""),
                "seed": request.POST.get("simulate-seed", ""),
                "profile": "paper",
                "repeat_seed": request.POST.get("repeat_seed", ""),
            }
            # The paper's share of careless raters (2 of 26); the full page sets it freely.
            raters = data["raters"]
            data["bad"] = str(round(int(raters) * 2 / 26)) if raters.isdigit() else "0"
            return self.simulate(request, campaign, data)
        if action not in ("launch", "close", "clone"):
            self.message_user(request, f"Unknown campaign action {action!r}.", messages.ERROR)
            return back
        if action == "clone" and not self.has_add_permission(request):
            raise PermissionDenied
        refused = campaign.refusal(action)
        if refused:
            self.message_user(request, refused, messages.ERROR)
            return back
        queryset = Campaign.objects.filter(pk=campaign.pk)
        return getattr(self, action)(request, queryset) or back

    def preview_view(self, request, pk):
        if request.method == "POST":
            campaign = get_campaign_for(request, pk, change=True)
            refused = campaign.refusal("preview")
            if refused:
                self.message_user(request, refused, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:study_campaign_change", args=[pk]))
        return super().preview_view(request, pk)

    def simulate_view(self, request, pk):
        campaign = get_campaign_for(request, pk, change=True)
        return self.simulate(request, campaign, request.POST if request.method == "POST" else None)

    def simulate(self, request, campaign, data):
        """Add a batch of simulated raters (the page's row or the full form), after a warning
        when its seed was used by an earlier batch; otherwise the form again, with why."""
        form = SimulateForm(data, initial={"seed": next_seed(campaign)})
        refused = campaign.refusal("simulate")
        warning = ""
        if form.is_bound and form.is_valid() and not refused:
            d = form.cleaned_data
            warning = seed_warning(campaign, d["seed"])
            if not warning or data.get("repeat_seed") == "yes":
                try:
                    votes = add_simulated_raters(
                        campaign, d["raters"], d["profile"], d["bad"], d["seed"], d["mix_with_real"]
                    )
                except ValueError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(
                        request,
                        f"{d['raters']} simulated raters ({d['bad']} careless) added to "
                        f"{campaign}: {votes} votes, labelled simulated in every export (seed "
                        f"{d['seed']}).",
                    )
                    if caveat(campaign):
                        self.message_user(request, caveat(campaign), messages.WARNING)
                    return HttpResponseRedirect(
                        reverse("admin:study_campaign_change", args=[campaign.pk])
                    )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "campaign": campaign,
            "form": form,
            "refused": refused,
            "seed_warning": warning,
            "batches": simulated_batches(campaign),
            "title": f"Simulated raters for {campaign}",
        }
        return TemplateResponse(request, "admin/study/campaign/simulate.html", context)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not obj.design_frozen():
            return fieldsets
        note = format_html('<p class="design-note">{}</p>', design_note(obj))
        return [
            (name, {**options, "description": note})
            if name == "Design" or "methods" in options["fields"]
            else (name, options)
            for name, options in fieldsets
        ]

    def response_change(self, request, obj):
        """Django says "changed successfully" whatever the form could change: on a campaign
        whose design is fixed, say what changed and why the design did not."""
        if obj.design_frozen():
            changed = getattr(request, "campaign_changed", [])
            request.campaign_saved = (
                f"The campaign {obj} was saved: {', '.join(changed)} changed."
                if changed
                else f"The campaign {obj} was saved: nothing changed."
            ) + f" {design_note(obj)}"
        return super().response_change(request, obj)

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        saved = getattr(request, "campaign_saved", "")
        if saved and level == messages.SUCCESS:
            message, request.campaign_saved = saved, ""
        super().message_user(request, message, level, *args, **kwargs)

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
        # What the form changed, for the message after saving (`response_change`).
        request.campaign_changed = [
            str(form.fields[f].label or f).lower() for f in form.changed_data if f in form.fields
        ]
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
            unchanged = campaign.nothing_to_do("launch")
            try:
                campaign.launch()
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(
                request,
                unchanged
                or f"Campaign {campaign} is live with {campaign.raters.links().count()} rater links.",
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
                count = campaign.close()
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, count.closed())
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
                f"The kernel of campaign {campaign} ({campaign.kernel!r}) is not in the registry: the copy "
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


def design_note(campaign):
    """Why a campaign's design fields are read-only, and what to do to change them."""
    return (
        f"The design is fixed once images are generated (status: "
        f"{campaign.get_status_display().lower()}): datasets, methods and the design's fields "
        "keep the values its images were made with. Clone the campaign (the Clone button "
        "above) to change them."
    )


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
