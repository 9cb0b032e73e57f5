"""An import's pages in the admin: its progress page (status, a progress bar that the page keeps
up to date from a small JSON status view, then the per-file report) and Run again for a job that
no worker took. Mixed into the admin whose upload form started the job (datasets, methods)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from study.datasets.jobs import job_status, run_again
from study.models import Dataset, ImportJob, Method


class ImportJobPagesMixin:
    import_kind = ""  # ImportJob.DATASET or ImportJob.RESULTS
    import_path = ""  # the upload form's path under the admin, e.g. "import-zip"
    import_upload_name = ""  # and its URL name after the model's, e.g. "import_zip"
    import_title = ""  # the upload form's title

    def _import_url_name(self, suffix=""):
        return f"{self.opts.app_label}_{self.opts.model_name}_{suffix}"

    def import_job_urls(self):
        wrap = self.admin_site.admin_view
        base = f"{self.import_path}/<int:pk>/"
        return [
            path(base, wrap(self.import_job_view), name=self._import_url_name("import_job")),
            path(
                f"{base}status/",
                wrap(self.import_job_status_view),
                name=self._import_url_name("import_job_status"),
            ),
            path(
                f"{base}run-again/",
                wrap(self.import_job_run_again_view),
                name=self._import_url_name("import_job_run_again"),
            ),
        ]

    def import_job_url(self, job, what="import_job"):
        return reverse(f"admin:{self._import_url_name(what)}", args=[job.pk])

    def get_import_job(self, request, pk):
        """The job, for the user who started it or a superuser; 404 for anyone else."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=pk, kind=self.import_kind)
        if not request.user.is_superuser and job.created_by_id != request.user.pk:
            raise Http404("No such import.")
        return job

    def render_import_form(self, request, form):
        """The upload form, with the user's recent imports of this kind under it."""
        jobs = ImportJob.objects.filter(kind=self.import_kind, created_by=request.user)[:10]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": self.import_title,
            "form": form,
            "recent_jobs": [(job, self.import_job_url(job)) for job in jobs],
        }
        return TemplateResponse(request, "admin/study/import_report.html", context)

    def import_job_view(self, request, pk):
        job = self.get_import_job(request, pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Import #{job.pk}: {job.target}",
            "job": job,
            "state": job_status(job),
            "status_url": self.import_job_url(job, "import_job_status"),
            "run_again_url": self.import_job_url(job, "import_job_run_again"),
            "upload_url": reverse(f"admin:{self._import_url_name(self.import_upload_name)}"),
            "upload_title": self.import_title,
            "target_link": _target_link(job),
        }
        return TemplateResponse(request, "admin/study/import_job.html", context)

    def import_job_status_view(self, request, pk):
        """The job page's poll (static/study/follow.js): its state, put in place on the page,
        and a reload once it has finished (the report is then part of the page)."""
        state = job_status(self.get_import_job(request, pk))
        total = state["files_total"]
        follow = {
            "settled": state["finished"],
            "reload": True,
            "interval": 1000,
            "text": {
                "#import-status": state["status_display"],
                "#import-summary": state["summary"],
                "#import-count": f"{state['files_done']} of {total or '?'}",
                "#import-stall": state["stall"],
            },
            "attrs": {"#import-progress": {"max": total or 1, "value": state["files_done"]}},
            "hidden": {
                "#import-stall": not state["stall"],
                "#import-run-again": not state["stall"],
            },
        }
        return JsonResponse({**state, **follow})

    def import_job_run_again_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = self.get_import_job(request, pk)
        if run_again(job):
            self.message_user(request, "The import is queued again.")
        else:
            self.message_user(
                request,
                "This import is not waiting for a worker: nothing to run again.",
                messages.WARNING,
            )
        return HttpResponseRedirect(self.import_job_url(job))


def _target_link(job):
    """(url, label) of what a finished import filled, if it exists."""
    if job.status != ImportJob.DONE:
        return None
    if job.kind == ImportJob.RESULTS:
        method = Method.objects.filter(slug=job.parameters.get("method")).first()
        if method:
            return reverse("admin:study_method_change", args=[method.pk]), f"method {method}"
        return None
    dataset = Dataset.objects.filter(name=job.parameters.get("dataset")).first()
    if dataset:
        return reverse("admin:study_dataset_change", args=[dataset.pk]), f"dataset {dataset}"
    return None
