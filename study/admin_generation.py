"""Admin pieces for getting images in and running generation (mixed into study.admin classes)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from study.importing import ImportFailed, ImportReport, import_results, import_zip, read_zip
from study.models import Campaign, Dataset, Method


def _duration(seconds):
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class CampaignGenerationMixin:
    """Generation panel (counts, per-method time, ETA, failures) and its three actions."""

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(name, {**opts}) for name, opts in super().get_fieldsets(request, obj)]
        for _name, opts in fieldsets:
            fields = list(opts.get("fields", []))
            if "kernel" in fields and "lr_source" not in fields:
                fields.insert(fields.index("kernel") + 1, "lr_source")
            if "progress_table" in fields:
                fields[fields.index("progress_table")] = "generation_panel"
            opts["fields"] = fields
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "generation_panel"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        action = self.get_action("cancel_generation")
        if action:
            actions["cancel_generation"] = action
        return actions

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/generation/<str:action>/",
                self.admin_site.admin_view(self.generation_view),
                name="study_campaign_generation",
            ),
        ]
        return urls + super().get_urls()

    @admin.action(description="Cancel generation (withdraw queued candidates)")
    def cancel_generation(self, request, queryset):
        for campaign in queryset:
            n = campaign.cancel_generation()
            self.message_user(request, f"{campaign}: {n} queued candidates withdrawn.")

    def generation_view(self, request, pk, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        if action == "generate":
            try:
                n = campaign.start_generation()
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{n} candidates queued for the workers.")
        elif action == "retry":
            self.message_user(request, f"{campaign.retry_failed()} failed candidates queued again.")
        elif action == "cancel":
            n = campaign.cancel_generation()
            self.message_user(request, f"{n} queued candidates withdrawn.")
        else:
            self.message_user(request, f"unknown action {action}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:study_campaign_change", args=[pk]))

    @admin.display(description="generation")
    def generation_panel(self, obj):
        if not obj.pk:
            return "Save the campaign, then generate its candidates."
        report = obj.generation_report()
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
        buttons = format_html_join(
            " ",
            '<button type="submit" class="button" formaction="{}" formmethod="post" '
            'formnovalidate name="generation" value="{}">{}</button>',
            (
                (reverse("admin:study_campaign_generation", args=[obj.pk, a]), a, label)
                for a, label in [
                    ("generate", "Generate"),
                    ("retry", "Retry failed"),
                    ("cancel", "Cancel"),
                ]
            ),
        )
        stall = report.stall_message()
        return format_html(
            '{}<table id="progress">{}</table>'
            '<p id="eta">{} candidates; LR: {}; remaining {}, ETA {}</p>'
            '<table id="method-times"><tr><th>method</th><th>done</th><th>mean</th>'
            "<th>total</th></tr>{}</table>{}<p>{}</p>",
            format_html('<p class="errornote" id="stalled">{}</p>', stall) if stall else "",
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


class DatasetZipForm(forms.Form):
    name = forms.SlugField(max_length=64, help_text="A new dataset, or one to add images to.")
    archive = forms.FileField(
        label="Zip of images",
        help_text="PNG, JPEG or BMP; LR images, if any, in a folder named LRx4 (or LRx2, LRx3).",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    is_calibration = forms.BooleanField(required=False, label="Calibration set")
    skip_bad = forms.BooleanField(
        required=False, help_text="Import the good files and report the bad ones."
    )


class DatasetImportMixin:
    """ "Import a zip" on the dataset list: every file checked, a per-file report."""

    change_list_template = "admin/study/dataset/change_list.html"

    def get_urls(self):
        urls = [
            path(
                "import-zip/",
                self.admin_site.admin_view(self.import_zip_view),
                name="study_dataset_import_zip",
            ),
        ]
        return urls + super().get_urls()

    def import_zip_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DatasetZipForm(request.POST or None, request.FILES or None)
        report, error = None, None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                report = import_zip(
                    data["name"],
                    data["archive"],
                    skip_bad=data["skip_bad"],
                    description=data["description"],
                    is_calibration=data["is_calibration"],
                )
            except ImportFailed as exc:
                report, error = exc.report, str(exc)
            except ValueError as exc:
                error = str(exc)
            else:
                self.message_user(
                    request, f"{len(report.imported)} files imported into {data['name']}."
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import a dataset from a zip",
            "form": form,
            "report": report,
            "error": error,
            "dataset": Dataset.objects.filter(name=form.data.get("name")).first()
            if report and not error
            else None,
        }
        return TemplateResponse(request, "admin/study/import_report.html", context)


class ResultsZipForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all())
    archive = forms.FileField(
        label="Zip of results", help_text="Matched to the dataset's images by name stem."
    )
    skip_bad = forms.BooleanField(
        required=False, help_text="Import the good files and report the bad ones."
    )


class MethodResultsMixin:
    """Upload an imported method's results (a zip) from the method's admin page."""

    def get_urls(self):
        urls = [
            path(
                "import-results/",
                self.admin_site.admin_view(self.import_results_view),
                name="study_method_import_results",
            ),
        ]
        return urls + super().get_urls()

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "imported_results"]

    @admin.display(description="imported results")
    def imported_results(self, obj):
        link = reverse("admin:study_method_import_results")
        if obj and obj.pk and obj.kind == Method.IMPORTED:
            return format_html(
                '{} files. <a href="{}?method={}">Upload results (zip)</a>',
                obj.results.count(),
                link,
                obj.slug,
            )
        return format_html('<a href="{}">Import results as a new method (zip)</a>', link)

    def import_results_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ResultsZipForm(request.POST or None, request.FILES or None)
        form.fields["method"] = forms.SlugField(
            initial=request.GET.get("method", ""),
            help_text="An imported method, created if new (e.g. srgan-vgg54-authors).",
        )
        report, error = None, None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            zip_report = ImportReport(dataset=data["dataset"].name)
            try:
                images, lows, _ = read_zip(data["archive"], zip_report)
                if zip_report.errors and not data["skip_bad"]:
                    raise ImportFailed(zip_report)
                report = import_results(
                    data["dataset"].name, data["method"], images + lows, skip_bad=data["skip_bad"]
                )
                report.files = zip_report.files + report.files
            except ImportFailed as exc:
                report, error = exc.report, str(exc)
                if report is not zip_report:
                    report.files = zip_report.files + report.files
            except ValueError as exc:
                error = str(exc)
            else:
                self.message_user(request, f"{len(report.imported)} results imported.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import results made elsewhere",
            "form": form,
            "report": report,
            "error": error,
        }
        return TemplateResponse(request, "admin/study/import_report.html", context)
