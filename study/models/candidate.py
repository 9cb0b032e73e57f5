"""A candidate: one image of one method made for a campaign, and its own job row (queued ->
running -> done / failed; claimed, leased and settled by study.models.jobs)."""

from django.db import models
from django.db.models import Q

from study.models.catalog import Method, SourceImage
from study.models.jobs import JobQuerySet, JobRow
from study.models.tokens import public_id

# The paper's calibration anchors: nearest neighbour shown as "1 - bad", HR as "5 - excellent".
CALIBRATION_METHODS = {"nearest": 1, "hr": 5}


class CandidateQuerySet(JobQuerySet):
    def done(self):
        return self.filter(status=Candidate.DONE)

    def waiting_for_metrics(self, names):
        """Made candidates that lack one of the metrics `names` with neither a value nor a reason
        (queued, or queued and lost): their metrics are not complete yet."""
        waiting = Q()
        for name in names:
            waiting |= ~Q(metrics__has_key=name) & ~Q(metric_notes__has_key=name)
        if not waiting:
            return self.none()
        return self.filter(waiting, status=Candidate.DONE)


class Candidate(JobRow, models.Model):
    HEARTBEAT = True  # a takeover one lease after the worker dies, not after the time limit
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STATUS_CHOICES = [
        (QUEUED, "Queued"),
        (RUNNING, "Running"),
        (DONE, "Done"),
        (FAILED, "Failed"),
        (CANCELLED, "Cancelled"),
    ]

    campaign = models.ForeignKey("study.Campaign", models.CASCADE, related_name="candidates")
    RATING = "rating"
    CALIBRATION = "calibration"
    role = models.CharField(
        max_length=12, default=RATING, choices=[(RATING, "Rated"), (CALIBRATION, "Calibration")]
    )
    image = models.ForeignKey(SourceImage, models.PROTECT, related_name="candidates")
    method = models.ForeignKey(Method, models.PROTECT, related_name="candidates")
    public_id = models.CharField(max_length=32, unique=True, default=public_id, editable=False)
    file = models.FileField(max_length=300, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    psnr = models.FloatField(null=True, blank=True, help_text="dB, Y channel, scale px border crop")
    ssim = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(
        default=dict, blank=True, help_text="The campaign's other metrics: name -> value."
    )
    metric_notes = models.JSONField(
        default=dict, blank=True, help_text="name -> why that metric is missing for this image."
    )
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The running attempt: its random token and until when its worker is known alive (a
    # heartbeat renews it). A redelivered task takes over a candidate whose lease has run out.
    claim = models.CharField(max_length=32, blank=True, editable=False)
    lease_expires = models.DateTimeField(null=True, blank=True)
    # When its metrics were last queued (the reconciler queues them again if that message was
    # lost and neither a value nor a reason came back).
    metrics_queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    seconds = models.FloatField(
        null=True, blank=True, help_text="Worker time to make it (a batch's time is shared)."
    )
    notes = models.CharField(max_length=300, blank=True, help_text="E.g. the HR was modcropped.")

    objects = CandidateQuerySet.as_manager()

    class Meta:
        ordering = ["campaign_id", "image_id", "method_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "image", "method"], name="unique_candidate"
            ),
        ]

    def __str__(self):
        return f"{self.campaign.name}: {self.image} x {self.method.slug}"

    def missing_metrics(self):
        """The campaign's metrics this candidate has no value for (never computed, or failed:
        a failure may have been mended since, e.g. a weight file supplied)."""
        return [m for m in self.campaign.metrics if m not in self.metrics]

    def output_path(self):
        # Deterministic, so a retried task overwrites instead of leaving an orphan.
        return f"candidates/{self.campaign_id}/{self.public_id}.png"
