"""The report in the admin: the live report page and the exports (CSV, zip), for CampaignAdmin."""

from functools import cache

from django.contrib import admin, messages
from django.http import HttpResponse, JsonResponse
from django.template import engines
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join

from study.analysis import VotesError
from study.models import Campaign
from study.models.campaign import get_campaign_for
from study.reports import frames, live
from study.spreadsheet import csv_text, safe_csv

REPORT_TEMPLATE = "admin/study/campaign/report.html"


@cache
def fragment_base(block):
    """A parent template holding only one block of the report page (``report_body`` or
    ``report_figures``): the page template extends it for a fragment, so the page and its
    in-place updates come from one template."""
    return engines["django"].from_string(f"{{% block {block} %}}{{% endblock %}}")


class CampaignReportMixin:
    """Report and export views for CampaignAdmin, and the links to them on the campaign page."""

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
            path(
                "<int:pk>/report/fragment/",
                self.admin_site.admin_view(self.report_fragment_view),
                name="study_campaign_report_fragment",
            ),
            path(
                "<int:pk>/report/figures/",
                self.admin_site.admin_view(self.report_figures_view),
                name="study_campaign_report_figures",
            ),
        ]
        return urls + super().get_urls()

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

    def report_view(self, request, pk):
        campaign = get_campaign_for(request, pk)
        reply = live.answer(campaign)
        context = {
            **self.admin_site.each_context(request),
            **_body_context(campaign, reply, figures=True),
            "title": f"Report: {campaign}",
            "base_template": "admin/base_site.html",
        }
        return TemplateResponse(request, REPORT_TEMPLATE, context)

    def report_fragment_view(self, request, pk):
        """The report's body as JSON for the page's poll: ``version`` (of the report shown:
        the votes it reflects), ``live``, ``changed``, ``fresh`` (of the current votes),
        ``computing`` (a newer one is being computed: poll again soon), ``freshness`` (in
        words) and, when the version differs from the page's (``?version=``), the body's
        ``html``; with ``peek=1`` only whether it changed (the poll then fetches tables and
        figures at once). Never waits for an analysis beyond the budget (study.reports.live)."""
        campaign = get_campaign_for(request, pk)
        peek = bool(request.GET.get("peek"))
        reply = live.answer(campaign, skip=("body", "figures") if peek else ("figures",))
        version = _shown_version(reply)
        out = {
            "version": version,
            "live": campaign.status == Campaign.LIVE,
            "changed": request.GET.get("version") != version,
            "fresh": reply.fresh,
            "computing": reply.computing,
            "freshness": reply.freshness(),
        }
        if out["changed"] and not peek:
            context = {
                **_body_context(campaign, reply),
                "base_template": fragment_base("report_body"),
            }
            out["html"] = render_to_string(REPORT_TEMPLATE, context, request)
        return _no_store(JsonResponse(out))

    def report_figures_view(self, request, pk):
        """The report's figures as JSON (``version``, ``html``), which the page fetches alongside
        the new tables, from the same cache."""
        campaign = get_campaign_for(request, pk)
        reply = live.answer(campaign, skip=("body",))
        context = {
            **_body_context(campaign, reply, tables=False, figures=True),
            "base_template": fragment_base("report_figures"),
        }
        html = render_to_string(REPORT_TEMPLATE, context, request)
        return _no_store(JsonResponse({"version": _shown_version(reply), "html": html}))

    def export_view(self, request, pk, kind):
        # A rater link opens a session and votes in it: only those who may change the campaign
        # get them; the other exports are what a view-only researcher may read anyway.
        campaign = get_campaign_for(request, pk, change=kind == "links")
        # Participant ids, dataset and image names reach these files: a formula-like text cell
        # is neutralised for the spreadsheet (study.spreadsheet); numbers stay numbers.
        if kind == "links":
            rows = [
                (r.pk, request.build_absolute_uri(r.get_absolute_url()))
                for r in campaign.raters.links()
            ]
            body, ctype, ext = csv_text([("rater", "url"), *rows]), "text/csv", "rater-links.csv"
        elif kind in ("votes", "mos"):
            # The votes and the table read in one snapshot; the header says how many it holds.
            try:
                text, n_votes = frames.export(campaign, kind)
            except (ValueError, VotesError) as exc:
                return HttpResponse(str(exc), status=409, content_type="text/plain")
            body, ctype, ext = safe_csv(text), "text/csv", f"{kind}.csv"
        elif kind == "report":
            try:
                body = frames.report_zip(campaign)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponse(str(exc), status=409, content_type="text/plain")
            ctype, ext = "application/zip", "report.zip"
        else:
            return HttpResponse("unknown export", status=404)
        response = HttpResponse(body, content_type=ctype)
        response["Content-Disposition"] = f'attachment; filename="{campaign.name}-{ext}"'
        if kind in ("votes", "mos"):
            response["X-Srmos-Votes"] = str(n_votes)
        return response


def _shown_version(reply):
    """The version of what a reply shows (the votes it reflects; empty before any report)."""
    return reply.version()


def _body_context(campaign, reply, tables=True, figures=False):
    """What the report shows from the cache: its tables and/or figures, how fresh they are, or
    why there is no report yet."""
    context = {
        "campaign": campaign,
        "live": campaign.status == Campaign.LIVE,
        "version": _shown_version(reply),
        "freshness": reply.freshness(),
        "computing": reply.computing,
    }
    if tables:
        context.update(reply.context())
        # A stale report of a rating campaign: the MOS of every vote so far above it.
        context["now"] = live.now(campaign) if reply.current else None
    if figures:
        context.update(reply.plots())
    return context


def _no_store(response):
    response["Cache-Control"] = "no-store"
    return response
