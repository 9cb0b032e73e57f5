"""The report in the admin: the live report page and the exports (CSV, zip), for CampaignAdmin."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join

from study.analysis import VotesError
from study.models import Campaign
from study.reports import frames, page


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
            context.update(page.report_context(campaign))
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
                frames.votes_frame(campaign).to_csv(index=False),
                "text/csv",
                "votes.csv",
            )
        elif kind == "mos":
            body, ctype, ext = frames.mos_csv(campaign), "text/csv", "mos.csv"
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
        return response
