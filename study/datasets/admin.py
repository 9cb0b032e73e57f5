"""Getting images in from the admin: datasets (a zip of HR images, optionally with LR ones) and
results made elsewhere (a zip per imported method). An upload becomes an import job that a
worker runs (study.datasets.tasks); its page shows the progress, then a per-file report."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from study.datasets.job_admin import ImportJobPagesMixin
from study.datasets.jobs import start_import
from study.models import Dataset, ImportJob, Method, SourceImage
from study.models.catalog import FROZEN_METHOD_FIELDS
from study.storage import DiskFull


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


class DatasetImportMixin(ImportJobPagesMixin):
    """ "Import a zip" on the dataset list: the zip is stored and imported in the background,
    every file checked, a per-file report on the import's page."""

    change_list_template = "admin/study/dataset/change_list.html"
    import_kind = ImportJob.DATASET
    import_path = "import-zip"
    import_upload_name = "import_zip"
    import_title = "Import a dataset from a zip"

    def get_urls(self):
        urls = [
            path(
                "import-zip/",
                self.admin_site.admin_view(self.import_zip_view),
                name="study_dataset_import_zip",
            ),
            *self.import_job_urls(),
        ]
        return urls + super().get_urls()

    def import_zip_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DatasetZipForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            parameters = {
                "dataset": data["name"],
                "skip_bad": data["skip_bad"],
                "description": data["description"],
                "is_calibration": data["is_calibration"],
            }
            try:
                job = start_import(ImportJob.DATASET, data["archive"], parameters, request.user)
            except DiskFull as exc:  # nothing was kept: say what to free, keep the form
                form.add_error("archive", str(exc))
                return self.render_import_form(request, form)
            return HttpResponseRedirect(self.import_job_url(job))
        return self.render_import_form(request, form)


class ResultsZipForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all())
    archive = forms.FileField(
        label="Zip of results", help_text="Matched to the dataset's images by name stem."
    )
    skip_bad = forms.BooleanField(
        required=False, help_text="Import the good files and report the bad ones."
    )
    lr_input = forms.ChoiceField(
        required=False,
        label="LR inputs made by",
        choices=[c for c in Method._meta.get_field("lr_input").choices if c[0]],
        initial=Method.LR_UNKNOWN,
        help_text="How the LR images these results were made from were produced (the SRGAN "
        "authors' released outputs did not use MATLAB's bicubic). Every export states it.",
    )


class MethodResultsMixin(ImportJobPagesMixin):
    """Upload an imported method's results (a zip) from the method list or page; imported in
    the background like a dataset zip."""

    change_list_template = "admin/study/method/change_list.html"
    import_kind = ImportJob.RESULTS
    import_path = "import-results"
    import_upload_name = "import_results"
    import_title = "Import results made elsewhere"

    def get_urls(self):
        urls = [
            path(
                "import-results/",
                self.admin_site.admin_view(self.import_results_view),
                name="study_method_import_results",
            ),
            *self.import_job_urls(),
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
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            parameters = {
                "dataset": data["dataset"].name,
                "method": data["method"],
                "skip_bad": data["skip_bad"],
                "lr_input": data["lr_input"] or None,
            }
            try:
                job = start_import(ImportJob.RESULTS, data["archive"], parameters, request.user)
            except DiskFull as exc:
                form.add_error("archive", str(exc))
                return self.render_import_form(request, form)
            return HttpResponseRedirect(self.import_job_url(job))
        return self.render_import_form(request, form)


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
    list_display = ["slug", "name", "kind", "lr_input", "network"]
    list_filter = ["kind"]
    list_select_related = ["registration"]

    @admin.display(description="own network (sha256, architecture, scale, parameters)")
    def network(self, obj):
        registration = getattr(obj, "registration", None)
        if registration is None:
            return "-"
        return (
            f"{registration.sha256[:12]}, {registration.architecture}, x{registration.scale}, "
            f"{registration.parameter_count or 0:,} parameters"
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.in_use():
            fields += [f for f in FROZEN_METHOD_FIELDS if f not in fields]
        if obj is not None and getattr(obj, "registration", None) is not None:
            # What a registered network is was checked by a worker: it cannot be edited here.
            fields += [f for f in ("kind", "parameters", "network") if f not in fields]
        return fields
