import random
import secrets

from django.db import models, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone


def public_id():
    # 128 random bits: an image URL says nothing of the method and cannot be guessed.
    return secrets.token_urlsafe(16)


def rater_token():
    return secrets.token_urlsafe(24)


class Dataset(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    is_calibration = models.BooleanField(
        default=False, help_text="Used to calibrate raters (NN = 1, HR = 5), never rated."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def source_upload_to(instance, filename):
    return f"datasets/{instance.dataset.name}/{filename}"


class SourceImage(models.Model):
    dataset = models.ForeignKey(Dataset, models.CASCADE, related_name="images")
    name = models.CharField(max_length=200, help_text="File name stem, used to match results.")
    original_name = models.CharField(max_length=255)
    file = models.FileField(upload_to=source_upload_to, max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    notes = models.CharField(max_length=300, blank=True, help_text="What the import changed.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "name"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="unique_image_name"),
            models.UniqueConstraint(fields=["dataset", "sha256"], name="unique_image_content"),
        ]

    def __str__(self):
        return f"{self.dataset.name}/{self.name}"


class Method(models.Model):
    INTERPOLATION = "interpolation"
    NETWORK = "network"
    IMPORTED = "imported"
    REFERENCE = "reference"
    KIND_CHOICES = [
        (INTERPOLATION, "Interpolation"),
        (NETWORK, "Network"),
        (IMPORTED, "Imported results"),
        (REFERENCE, "HR reference"),
    ]

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    parameters = models.JSONField(
        default=dict, blank=True, help_text='For interpolation/network: {"sr_method": NAME}.'
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    @property
    def queue(self):
        return "gpu" if self.kind == self.NETWORK else "cpu"

    @property
    def sr_method(self):
        return self.parameters.get("sr_method", self.slug)


class Campaign(models.Model):
    DRAFT = "draft"
    GENERATING = "generating"
    READY = "ready"
    LIVE = "live"
    CLOSED = "closed"
    STATUS_CHOICES = [
        (DRAFT, "Draft"),
        (GENERATING, "Generating candidates"),
        (READY, "Ready to launch"),
        (LIVE, "Live"),
        (CLOSED, "Closed"),
    ]

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    datasets = models.ManyToManyField(Dataset, related_name="campaigns")
    methods = models.ManyToManyField(Method, related_name="campaigns")
    scale = models.PositiveSmallIntegerField(default=4)
    kernel = models.CharField(
        max_length=32, default="matlab-bicubic", help_text="How HR images are degraded to LR."
    )
    seed = models.IntegerField(default=0, help_text="Seeds every rater's trial order.")
    rater_links = models.PositiveIntegerField(
        default=5, help_text="Number of secret rater links made at launch."
    )
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    launched_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    def progress(self):
        counts = dict(self.candidates.values_list("status").annotate(n=Count("id")))
        return {status: counts.get(status, 0) for status, _ in Candidate.STATUS_CHOICES}

    def start_generation(self):
        """Create the missing candidates and queue every one not yet made.

        Returns the number of candidates queued. A finished campaign queues nothing.
        """
        from study import tasks

        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=self.pk)
            if campaign.status not in (self.DRAFT, self.GENERATING):
                return 0
            images = SourceImage.objects.filter(dataset__in=campaign.datasets.all())
            methods = list(campaign.methods.all())
            if not methods or not images.exists():
                raise ValueError(
                    "A campaign needs at least one dataset with images and one method."
                )
            Candidate.objects.bulk_create(
                [
                    Candidate(campaign=campaign, image=image, method=m)
                    for image in images
                    for m in methods
                ],
                ignore_conflicts=True,
            )
            queued = list(
                campaign.candidates.filter(status=Candidate.QUEUED).values_list(
                    "pk", "method__kind"
                )
            )
            campaign.status = self.GENERATING if queued else campaign.status
            campaign.save(update_fields=["status"])
            transaction.on_commit(lambda: tasks.enqueue_candidates(queued))
        self.refresh_from_db()
        self.update_generation_status()
        return len(queued)

    def retry_failed(self):
        from study import tasks

        with transaction.atomic():
            failed = self.candidates.filter(status=Candidate.FAILED)
            ids = list(failed.values_list("pk", "method__kind"))
            failed.update(status=Candidate.QUEUED, error="", started_at=None, finished_at=None)
            if ids:
                Campaign.objects.filter(pk=self.pk, status=self.READY).update(
                    status=self.GENERATING
                )
            transaction.on_commit(lambda: tasks.enqueue_candidates(ids))
        return len(ids)

    def update_generation_status(self):
        """Move a generating campaign to ready once every candidate is done."""
        unfinished = self.candidates.exclude(status=Candidate.DONE)
        if self.candidates.exists() and not unfinished.exists():
            # Conditional update: when the last two tasks finish together both may get here.
            Campaign.objects.filter(pk=self.pk, status=self.GENERATING).update(status=self.READY)

    def launch(self):
        """Make a ready campaign live and create its rater links (idempotent)."""
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=self.pk)
            if campaign.status == self.LIVE:
                return
            if campaign.status != self.READY:
                raise ValueError(
                    f"Campaign {campaign.name} is {campaign.get_status_display().lower()}; "
                    "only a campaign whose candidates are all generated can be launched."
                )
            missing = campaign.rater_links - campaign.raters.count()
            for _ in range(max(missing, 0)):
                Rater.objects.create_with_trials(campaign)
            campaign.status = self.LIVE
            campaign.launched_at = timezone.now()
            campaign.save(update_fields=["status", "launched_at"])
        self.refresh_from_db()

    def close(self):
        Campaign.objects.filter(pk=self.pk, status=self.LIVE).update(
            status=self.CLOSED, closed_at=timezone.now()
        )
        self.refresh_from_db()


class CandidateQuerySet(models.QuerySet):
    def done(self):
        return self.filter(status=Candidate.DONE)


class Candidate(models.Model):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STATUS_CHOICES = [(QUEUED, "Queued"), (RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed")]

    campaign = models.ForeignKey(Campaign, models.CASCADE, related_name="candidates")
    image = models.ForeignKey(SourceImage, models.PROTECT, related_name="candidates")
    method = models.ForeignKey(Method, models.PROTECT, related_name="candidates")
    public_id = models.CharField(max_length=32, unique=True, default=public_id, editable=False)
    file = models.FileField(max_length=300, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    psnr = models.FloatField(null=True, blank=True, help_text="dB, Y channel, scale px border crop")
    ssim = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = CandidateQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "image", "method"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "image", "method"], name="unique_candidate"
            ),
        ]

    def __str__(self):
        return f"{self.campaign.name}: {self.image} x {self.method.slug}"

    def output_path(self):
        # Deterministic, so a retried task overwrites instead of leaving an orphan.
        return f"candidates/{self.campaign_id}/{self.public_id}.png"


class RaterManager(models.Manager):
    def create_with_trials(self, campaign, label=""):
        rater = self.create(campaign=campaign, label=label, seed=secrets.randbits(31))
        candidates = list(
            campaign.candidates.filter(status=Candidate.DONE).values_list("pk", "image_id")
        )
        order = trial_order(candidates, seed=f"{campaign.seed}:{rater.seed}")
        Trial.objects.bulk_create(
            [Trial(rater=rater, candidate_id=pk, position=i) for i, pk in enumerate(order)]
        )
        return rater


def trial_order(candidates, seed):
    """Random order of (candidate_pk, image_pk) pairs that never shows one image twice in a row.

    Each step draws an image with probability proportional to its remaining candidates, among
    the images that keep a valid completion possible (no image may need more than every other
    slot). Returns candidate pks; the same seed gives the same order, so sessions can be replayed.
    """
    rng = random.Random(str(seed))
    groups = {}
    for pk, image in sorted(candidates):
        groups.setdefault(image, []).append(pk)
    for pks in groups.values():
        rng.shuffle(pks)

    def feasible(image, total):
        # After placing `image`, the rest must fit with no repeats and not start with `image`.
        rest = total - 1
        for other, pks in groups.items():
            left = len(pks) - (other == image)
            limit = rest // 2 if other == image else (rest + 1) // 2
            if left > limit:
                return False
        return True

    order, previous = [], None
    total = len(candidates)
    while total:
        choices = [i for i, pks in groups.items() if pks and i != previous]
        allowed = [i for i in choices if feasible(i, total)] or choices or [previous]
        weights = [len(groups[i]) for i in allowed]
        image = rng.choices(allowed, weights=weights)[0]
        order.append(groups[image].pop())
        previous = image
        total -= 1
    return order


class Rater(models.Model):
    campaign = models.ForeignKey(Campaign, models.CASCADE, related_name="raters")
    token = models.CharField(max_length=64, unique=True, default=rater_token, editable=False)
    label = models.CharField(max_length=100, blank=True)
    seed = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = RaterManager()

    class Meta:
        ordering = ["campaign", "created_at", "pk"]

    def __str__(self):
        return self.label or f"rater {self.pk}"

    def get_absolute_url(self):
        return reverse("study:session", args=[self.token])

    def current_trial(self):
        return self.trials.filter(score__isnull=True).select_related("candidate").first()

    def record_vote(self, position, score):
        """Store a score for the trial at `position`; returns True when this call stored it.

        Idempotent: a resent vote for an answered trial stores nothing and returns False.
        Only the rater's current trial (the first unanswered one) accepts a vote.
        """
        earlier_open = Trial.objects.filter(
            rater=OuterRef("rater"), position__lt=OuterRef("position"), score__isnull=True
        )
        now = timezone.now()
        stored = (
            Trial.objects.filter(rater=self, position=position, score__isnull=True)
            .exclude(Exists(earlier_open))
            .update(score=score, answered_at=now)
        )
        if stored:
            Rater.objects.filter(pk=self.pk, started_at__isnull=True).update(started_at=now)
            if not self.trials.filter(score__isnull=True).exists():
                Rater.objects.filter(pk=self.pk, completed_at__isnull=True).update(completed_at=now)
            return True
        if self.trials.filter(position=position, score__isnull=False).exists():
            return False
        raise VoteRejected("This is not your current image; the page has been refreshed.")


class VoteRejected(Exception):
    pass


class TrialQuerySet(models.QuerySet):
    def answered(self):
        return self.filter(score__isnull=False)

    def pending(self):
        return self.filter(score__isnull=True)


class Trial(models.Model):
    rater = models.ForeignKey(Rater, models.CASCADE, related_name="trials")
    candidate = models.ForeignKey(Candidate, models.PROTECT, related_name="trials")
    position = models.PositiveIntegerField()
    score = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(i, str(i)) for i in range(1, 6)]
    )
    answered_at = models.DateTimeField(null=True, blank=True)

    objects = TrialQuerySet.as_manager()

    class Meta:
        ordering = ["rater", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rater", "position"], name="unique_trial_position"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5),
                name="score_1_to_5",
            ),
        ]

    def __str__(self):
        return f"{self.rater} #{self.position}"
