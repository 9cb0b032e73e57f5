"""An import from the admin as a job row: the uploaded zip waits in storage, a worker claims the
row (queued -> running -> done / failed), reports its progress on it and leaves the per-file
report there for the researcher's page."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from study.models.jobs import JobQuerySet, JobRow


class ImportJob(JobRow, models.Model):
    DATASET = "dataset"
    RESULTS = "results"
    KIND_CHOICES = [(DATASET, "Dataset"), (RESULTS, "Results of a method")]
    QUEUED = "queued"
    RUNNING = "running"
    HEARTBEAT = True
    DONE = "done"
    FAILED = "failed"
    STATUS_CHOICES = [(QUEUED, "Queued"), (RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed")]

    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    parameters = models.JSONField(
        default=dict,
        help_text="What the upload form said: dataset, method, skip_bad, lr_input, description, "
        "is_calibration.",
    )
    archive = models.CharField(
        max_length=300, blank=True, help_text="The uploaded zip in storage; emptied once settled."
    )
    original_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    claim = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    files_total = models.PositiveIntegerField(default=0)
    report = models.JSONField(
        default=list, blank=True, help_text='Per file: {"name", "status", "message"}.'
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Renewed by the worker's heartbeat while the import runs: a killed worker's import is taken
    # over one lease later (not after the task's time limit).
    lease_expires = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_kind_display()} import #{self.pk} ({self.status})"

    @property
    def target(self):
        """What the import fills: the dataset, or the method and its dataset."""
        params = self.parameters
        if self.kind == self.RESULTS:
            return f"method {params.get('method')} on dataset {params.get('dataset')}"
        return f"dataset {params.get('dataset')}"

    @property
    def finished(self):
        return self.status in (self.DONE, self.FAILED)

    @property
    def percent(self):
        if self.status == self.DONE:
            return 100
        if not self.files_total:
            return 0
        return min(100, round(100 * self.files_done / self.files_total))

    def imported_count(self):
        return sum(1 for f in self.report if f.get("status") == "imported")

    def summary(self):
        """One sentence on where the job stands, as the page and its status endpoint say it."""
        if self.status == self.DONE:
            what = "results" if self.kind == self.RESULTS else "files"
            return f"{self.imported_count()} {what} imported into {self.target}."
        if self.status == self.FAILED:
            return f"Nothing was imported into {self.target}: {self.error}"
        if self.status == self.RUNNING and self.files_total and self.files_done >= self.files_total:
            return f"All {self.files_total} files checked; storing them."
        if self.status == self.RUNNING and not self.files_total:
            return "Reading the zip."
        if self.status == self.RUNNING:
            return f"Checking files: {self.files_done} of {self.files_total or '?'}."
        return "Waiting for a worker."
