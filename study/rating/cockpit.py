"""The researcher's side of the rating: links to hand out (absolute, with copy buttons), a
preview of the real session, simulated raters for a pilot report, the participant funnel, the
session length, and approval lists for crowd platforms. Mixed into CampaignAdmin."""

from contextvars import ContextVar

from django import forms
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from study.analysis.simulate import PROFILES
from study.models import Campaign, Rater, session_estimate
from study.models.campaign import get_campaign_for
from study.rating.approvals import PLATFORMS, Thresholds, approval_csv, approval_rows
from study.rating.funnel import campaign_funnel

# The request being answered, so the campaign page's read-only fields can print absolute links.
_request = ContextVar("srmos_admin_request", default=None)


def absolute(path):
    request = _request.get()
    return request.build_absolute_uri(path) if request is not None else path


def _copyable(url, element_id=""):
    context = {"url": url, "element_id": element_id}
    return render_to_string("admin/study/campaign/_copyable.html", context)


class SimulateForm(forms.Form):
    raters = forms.IntegerField(min_value=1, max_value=500, initial=26)
    bad = forms.IntegerField(
        min_value=0, initial=2, label="of them careless", help_text="random or straight-lining"
    )
    profile = forms.ChoiceField(choices=[(p, p) for p in sorted(PROFILES)], initial="paper")
    seed = forms.IntegerField(initial=0)
    mix_with_real = forms.BooleanField(
        required=False, label="Allow mixing with people's votes (they are labelled simulated)"
    )


class ApprovalForm(forms.Form):
    platform = forms.ChoiceField(choices=[(p, p.capitalize()) for p in PLATFORMS])
    require_complete = forms.BooleanField(required=False, initial=True)
    max_gold_misses = forms.IntegerField(min_value=0, initial=1)
    reject_straightlining = forms.BooleanField(required=False, initial=True)
    min_median_seconds = forms.FloatField(min_value=0, initial=0.0)


class CampaignCrowdMixin:
    crowd_fields = ["crowd_tools", "session_length", "participants"]

    class Media:
        js = ["study/admin_copy.js"]

    def changeform_view(self, request, *args, **kwargs):
        token = _request.set(request)
        try:
            response = super().changeform_view(request, *args, **kwargs)
            # Rendered here, while the request is known: the links are printed absolute.
            if hasattr(response, "render"):
                response.render()
            return response
        finally:
            _request.reset(token)

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path("<int:pk>/preview/", view(self.preview_view), name="study_campaign_preview"),
            path("<int:pk>/simulate/", view(self.simulate_view), name="study_campaign_simulate"),
            path("<int:pk>/approvals/", view(self.approvals_view), name="study_campaign_approvals"),
        ]
        return urls + super().get_urls()

    def _back(self, campaign):
        return HttpResponseRedirect(reverse("admin:study_campaign_change", args=[campaign.pk]))

    def preview_view(self, request, pk):
        """A preview session of the real pages, with a banner; its votes reach no analysis.
        CampaignAdmin.preview_view refuses it first in the campaign's own words when the
        campaign cannot be previewed; its simulate_view serves the simulate URL above."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = get_campaign_for(request, pk, change=True)
        rater = Rater.objects.create_with_trials(
            campaign, label=f"preview by {request.user}", platform=Rater.PREVIEW
        )
        return HttpResponseRedirect(rater.get_absolute_url())

    def approvals_view(self, request, pk):
        campaign = get_campaign_for(request, pk)
        form = ApprovalForm(request.GET if "platform" in request.GET else None)
        rows = None
        if form.is_bound and form.is_valid():
            d = dict(form.cleaned_data)
            platform = d.pop("platform")
            thresholds = Thresholds(**d)
            if "download" in request.GET:
                response = HttpResponse(
                    approval_csv(campaign, platform, thresholds), content_type="text/csv"
                )
                name = f"{campaign.name}-{platform}-approvals.csv"
                response["Content-Disposition"] = f'attachment; filename="{name}"'
                return response
            rows = approval_rows(campaign, platform, thresholds)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "campaign": campaign,
            "form": form,
            "rows": rows,
            "title": f"Approval lists for {campaign}",
        }
        return TemplateResponse(request, "admin/study/campaign/approvals.html", context)

    def rater_links_list(self, obj):
        if not obj.pk or obj.status not in (Campaign.LIVE, Campaign.CLOSED):
            return "Links appear here once the campaign is launched."
        raters = obj.raters.links()
        urls = [absolute(r.get_absolute_url()) for r in raters]
        return render_to_string("admin/study/campaign/_rater_links.html", {"urls": urls})

    rater_links_list.short_description = "rater links"

    def recruitment_link(self, obj):
        if not obj.pk:
            return "Appears once the campaign is saved."
        url = absolute(reverse("study:join", args=[obj.recruit_token]))
        return format_html(
            "{}<br>Prolific appends <code>?PROLIFIC_PID=...&amp;STUDY_ID=...&amp;SESSION_ID=..."
            "</code>; MTurk appends <code>workerId</code>, <code>assignmentId</code>, "
            "<code>hitId</code>, <code>turkSubmitTo</code>. Another platform: add "
            "<code>?participant=ID</code>.",
            _copyable(url, "recruitment-link"),
        )

    recruitment_link.short_description = "open recruitment link"

    def session_length(self, obj):
        if not obj.pk:
            return "-"
        minutes, trials, seconds, measured = session_estimate(obj)
        basis = (
            "measured median" if measured else "a pilot's typical time; measured once votes exist"
        )
        return format_html(
            '<span id="session-length">about {} minute{}</span>: {} images x {} s per vote ({})',
            minutes,
            "s" * (minutes != 1),
            trials,
            f"{seconds:.1f}",
            basis,
        )

    session_length.short_description = "session length"

    def participants(self, obj):
        if not obj.pk:
            return "-"
        funnel = campaign_funnel(obj)
        times = "-"
        if funnel.median_minutes is not None:
            times = f"median {funnel.median_minutes:.1f} min"
            if funnel.quartiles:
                times += f" (middle half {funnel.quartiles[0]:.1f}-{funnel.quartiles[1]:.1f})"
        context = {"rows": funnel.rows(), "times": times}
        return render_to_string("admin/study/campaign/_funnel.html", context)

    participants.short_description = "participants (people only)"

    def crowd_tools(self, obj):
        if not obj.pk:
            return "-"
        preview = reverse("admin:study_campaign_preview", args=[obj.pk])
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" '
            'formnovalidate formtarget="_blank" id="preview">Preview as a rater</button> '
            '<a class="button" href="{}">Simulated raters</a> '
            '<a class="button" href="{}">Approval lists</a>',
            preview,
            reverse("admin:study_campaign_simulate", args=[obj.pk]),
            reverse("admin:study_campaign_approvals", args=[obj.pk]),
        )

    crowd_tools.short_description = "tools"
