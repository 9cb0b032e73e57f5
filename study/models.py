import random
import secrets
from dataclasses import dataclass

from django.core.validators import URLValidator
from django.db import models, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone


def public_id():
    # 128 random bits: an image URL says nothing of the method and cannot be guessed.
    return secrets.token_urlsafe(16)


def rater_token():
    return secrets.token_urlsafe(24)


def completion_code():
    return secrets.token_hex(4).upper()


DEFAULT_CONSENT = (
    "You are invited to take part in a study of image quality. You will see a series of images "
    "and rate the quality of each one. It takes about 20-30 minutes; you can take breaks and come "
    "back later with the same link. Your scores are stored with an anonymous id and used only "
    "for research. Taking part is voluntary and you may stop at any time."
)
DEFAULT_INSTRUCTIONS = (
    "Rate the quality of each image on a scale from 1 (bad) to 5 (excellent). Judge the image "
    "itself: sharpness, detail, artefacts and how natural it looks. There are no right or wrong "
    "answers. Please do not zoom the page: images must be seen at their real size."
)


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
    datasets = models.ManyToManyField(
        Dataset, related_name="campaigns", limit_choices_to={"is_calibration": False}
    )
    methods = models.ManyToManyField(Method, related_name="campaigns")
    scale = models.PositiveSmallIntegerField(default=4)
    kernel = models.CharField(
        max_length=32, default="matlab-bicubic", help_text="How HR images are degraded to LR."
    )
    LR_KERNEL = "kernel"
    LR_DATASET = "dataset"
    lr_source = models.CharField(
        max_length=10,
        choices=[
            (LR_KERNEL, "Degrade HR with the kernel"),
            (LR_DATASET, "The dataset's own LR images"),
        ],
        default=LR_KERNEL,
        help_text="Where the LR inputs come from; recorded in every export.",
    )
    seed = models.IntegerField(default=0, help_text="Seeds every rater's trial order.")
    rater_links = models.PositiveIntegerField(
        default=5, help_text="Secret rater links to make; raise it and launch again to add more."
    )
    # The rater's session (issue 5): texts, display policy, calibration and quality control.
    consent_text = models.TextField(default=DEFAULT_CONSENT, help_text="Shown on the welcome page.")
    instructions_text = models.TextField(default=DEFAULT_INSTRUCTIONS, blank=True)
    display_policy = models.CharField(
        max_length=10,
        choices=[
            ("warn", "Warn, then let the rater go on"),
            ("refuse", "Refuse until the window is large enough"),
        ],
        default="warn",
        help_text="What happens when the largest image cannot be shown at 1:1 device pixels.",
    )
    calibration_dataset = models.ForeignKey(
        "Dataset",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="calibrated_campaigns",
        limit_choices_to={"is_calibration": True},
        help_text="Its nearest-neighbour (labelled 1) and HR (labelled 5) versions are shown first.",
    )
    calibration_images = models.PositiveIntegerField(
        default=20, help_text="How many calibration images (the paper: 20)."
    )
    gold_items = models.BooleanField(
        default=True, help_text="Flag HR votes below 4 and nearest-neighbour votes above 2."
    )
    retest_share = models.FloatField(
        default=0.0, help_text="Share of candidates shown a second time (test-retest), 0 to 0.5."
    )
    min_view_ms = models.PositiveIntegerField(
        default=0, help_text="Minimum viewing time before a score can be given (milliseconds)."
    )
    break_every = models.PositiveIntegerField(
        default=100, help_text="Suggest a break every N images (0: never)."
    )
    straightline_min_variance = models.FloatField(
        default=0.1, help_text="Flag a session whose votes vary less than this (P.808: 0.1-0.15)."
    )
    recruit_token = models.CharField(
        max_length=64,
        unique=True,
        default=rater_token,
        editable=False,
        help_text="The open recruitment link for crowd platforms.",
    )
    open_recruitment = models.BooleanField(
        default=False, help_text="Accept participants through the open link (Prolific, MTurk)."
    )
    max_participants = models.PositiveIntegerField(
        default=0, help_text="Cap on open-link participants (0: no cap)."
    )
    completion_code = models.CharField(max_length=64, default=completion_code)
    completion_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[URLValidator(schemes=["https", "http"])],
        help_text="Where a finished participant is sent; {code} and {participant} are filled in, "
        "e.g. https://app.prolific.com/submissions/complete?cc={code}",
    )
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    launched_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    generation_queued_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When candidates were last queued."
    )

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
            Candidate.objects.bulk_create(campaign.planned_candidates(), ignore_conflicts=True)
            campaign.candidates.filter(status=Candidate.CANCELLED).update(status=Candidate.QUEUED)
            # A running candidate whose lease ran out lost its worker (and, on a broker without
            # redelivery, its message too): queue a task for it, which takes it over.
            queued = list(
                campaign.candidates.filter(
                    Q(status=Candidate.QUEUED) | Candidate.abandoned()
                ).values_list("pk", "method__kind")
            )
            campaign.status = self.GENERATING if queued else campaign.status
            if queued:
                campaign.generation_queued_at = timezone.now()
            campaign.save(update_fields=["status", "generation_queued_at"])
            transaction.on_commit(lambda: tasks.enqueue_candidates(queued))
        self.refresh_from_db()
        self.update_generation_status()
        return len(queued)

    def planned_candidates(self):
        """Every (image, method) the campaign needs, calibration pairs included (unsaved)."""
        images = SourceImage.objects.filter(dataset__in=self.datasets.all())
        methods = list(self.methods.all())
        if not methods or not images.exists():
            raise ValueError("A campaign needs at least one dataset with images and one method.")
        planned = [Candidate(campaign=self, image=i, method=m) for i in images for m in methods]
        if self.calibration_dataset_id:
            anchors = list(Method.objects.filter(slug__in=CALIBRATION_METHODS))
            if len(anchors) != len(CALIBRATION_METHODS):
                raise ValueError("Calibration needs the built-in methods 'nearest' and 'hr'.")
            calibration = self.calibration_dataset.images.order_by("name")[
                : self.calibration_images
            ]
            planned += [
                Candidate(campaign=self, image=i, method=m, role=Candidate.CALIBRATION)
                for i in calibration
                for m in anchors
            ]
        return planned

    def calibration_trials(self):
        """(candidate, label score) pairs shown before rating: each image's NN (1) then HR (5)."""
        candidates = (
            self.candidates.filter(role=Candidate.CALIBRATION, status=Candidate.DONE)
            .select_related("method")
            .order_by("image__name", "-method__slug")
        )
        return [(c, CALIBRATION_METHODS[c.method.slug]) for c in candidates]

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
                Campaign.objects.filter(pk=self.pk).update(generation_queued_at=timezone.now())
            transaction.on_commit(lambda: tasks.enqueue_candidates(ids))
        return len(ids)

    def requeue_abandoned(self):
        """Queue a task again for each running candidate whose worker stopped renewing its lease
        (a broker without redelivery lost its message). Returns how many."""
        from study import tasks

        ids = list(self.candidates.filter(Candidate.abandoned()).values_list("pk", "method__kind"))
        if ids:
            tasks.enqueue_candidates(ids)
        return len(ids)

    def cancel_generation(self):
        """Withdraw the queued candidates; running ones finish. Returns how many were withdrawn.

        Their tasks stay in the broker and return quietly (the claim needs `queued`); generating
        again queues them anew.
        """
        with transaction.atomic():
            n = self.candidates.filter(status=Candidate.QUEUED).update(status=Candidate.CANCELLED)
            Campaign.objects.filter(pk=self.pk, status=self.GENERATING).update(status=self.DRAFT)
        self.refresh_from_db()
        return n

    def lr_description(self):
        if self.lr_source == self.LR_DATASET:
            return f"dataset LR images (x{self.scale})"
        return f"HR degraded x{self.scale} with {self.kernel}"

    def generation_report(self):
        from study.generation import generation_report

        return generation_report(self)

    def update_generation_status(self):
        """Move a generating campaign to ready once every candidate is done."""
        unfinished = self.candidates.exclude(status=Candidate.DONE)
        if self.candidates.exists() and not unfinished.exists():
            # Conditional update: when the last two tasks finish together both may get here.
            Campaign.objects.filter(pk=self.pk, status=self.GENERATING).update(status=self.READY)

    def launch(self):
        """Make a ready campaign live with `rater_links` secret links.

        Idempotent: on a live campaign it only adds the links that `rater_links` asks for
        beyond those made already (raise the number, launch again).
        """
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=self.pk)
            if campaign.status not in (self.READY, self.LIVE):
                raise ValueError(
                    f"Campaign {campaign.name} is {campaign.get_status_display().lower()}; "
                    "only a campaign whose candidates are all generated can be launched."
                )
            missing = campaign.rater_links - campaign.raters.filter(platform="link").count()
            for _ in range(max(missing, 0)):
                Rater.objects.create_with_trials(campaign)
            if campaign.status == self.READY:
                campaign.status = self.LIVE
                campaign.launched_at = timezone.now()
                campaign.save(update_fields=["status", "launched_at"])
        self.refresh_from_db()

    def close(self):
        Campaign.objects.filter(pk=self.pk, status=self.LIVE).update(
            status=self.CLOSED, closed_at=timezone.now()
        )
        self.refresh_from_db()


# The paper's calibration anchors: nearest neighbour shown as "1 - bad", HR as "5 - excellent".
CALIBRATION_METHODS = {"nearest": 1, "hr": 5}


class CandidateQuerySet(models.QuerySet):
    def done(self):
        return self.filter(status=Candidate.DONE)


class Candidate(models.Model):
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

    campaign = models.ForeignKey(Campaign, models.CASCADE, related_name="candidates")
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
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The running attempt: its random token and until when its worker is known alive (a
    # heartbeat renews it). A redelivered task takes over a candidate whose lease has run out.
    claim = models.CharField(max_length=32, blank=True, editable=False)
    lease_expires = models.DateTimeField(null=True, blank=True)
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

    @staticmethod
    def abandoned(now=None):
        """Running, but the worker stopped renewing the lease: it died mid-task (a filter)."""
        return Q(status=Candidate.RUNNING, lease_expires__lt=now or timezone.now())

    def output_path(self):
        # Deterministic, so a retried task overwrites instead of leaving an orphan.
        return f"candidates/{self.campaign_id}/{self.public_id}.png"


class LowResImage(models.Model):
    """A dataset's own LR version of a source image (e.g. the SRGAN release's `_LR` files)."""

    image = models.ForeignKey(SourceImage, models.CASCADE, related_name="lr_images")
    scale = models.PositiveSmallIntegerField()
    original_name = models.CharField(max_length=255)
    file = models.FileField(max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()

    class Meta:
        ordering = ["image", "scale"]
        constraints = [
            models.UniqueConstraint(fields=["image", "scale"], name="unique_lr_image"),
        ]

    def __str__(self):
        return f"{self.image} LR x{self.scale}"


class ImportedResult(models.Model):
    """An output made elsewhere (an `imported` method's result for one source image)."""

    method = models.ForeignKey(Method, models.CASCADE, related_name="results")
    image = models.ForeignKey(SourceImage, models.CASCADE, related_name="results")
    original_name = models.CharField(max_length=255)
    file = models.FileField(max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["method", "image"]
        constraints = [
            models.UniqueConstraint(fields=["method", "image"], name="unique_imported_result"),
        ]

    def __str__(self):
        return f"{self.method.slug}: {self.image}"


# Gold items: the anchors' expected scores (P.808 accepts a gold answer within +-1).
GOLD_EXPECTATIONS = {"hr": ">=4", "nearest": "<=2"}


class RaterManager(models.Manager):
    def create_with_trials(self, campaign, label="", **fields):
        rater = self.create(campaign=campaign, label=label, seed=secrets.randbits(31), **fields)
        rows = list(
            campaign.candidates.filter(status=Candidate.DONE, role=Candidate.RATING).values_list(
                "pk", "image_id", "method__slug"
            )
        )
        rng = random.Random(f"{campaign.seed}:{rater.seed}:retest")
        n_retest = round(min(max(campaign.retest_share, 0.0), 0.5) * len(rows))
        retested = rng.sample(rows, n_retest) if n_retest else []
        slugs = {pk: slug for pk, _, slug in rows}
        order = trial_order(
            [(pk, image) for pk, image, _ in rows + retested],
            seed=f"{campaign.seed}:{rater.seed}",
        )
        seen = set()
        trials = []
        for position, pk in enumerate(order):
            repeat = 1 if pk in seen else 0
            seen.add(pk)
            trials.append(
                Trial(
                    rater=rater,
                    candidate_id=pk,
                    position=position,
                    kind="retest" if repeat else "rating",
                    repeat=repeat,
                    expected=GOLD_EXPECTATIONS.get(slugs[pk], "") if campaign.gold_items else "",
                )
            )
        Trial.objects.bulk_create(trials)
        rater.n_trials = len(trials)
        rater.save(update_fields=["n_trials"])
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

    order, previous = [], None
    total = len(candidates)
    while total:
        counts = {image: len(pks) for image, pks in groups.items() if pks}
        # Only the two largest groups decide whether a valid completion remains possible.
        (top, top_n), *rest = sorted(counts.items(), key=lambda kv: -kv[1])[:2] or [(None, 0)]
        second_n = rest[0][1] if rest else 0

        # After placing an image, no group may need more than every other remaining slot, and
        # that image itself may not come next.
        left = total - 1
        choices = [i for i in counts if i != previous]
        allowed = (
            [
                i
                for i in choices
                if (second_n if i == top else top_n) <= (left + 1) // 2
                and counts[i] - 1 <= left // 2
            ]
            or choices
            or [previous]
        )
        image = rng.choices(allowed, weights=[counts[i] for i in allowed])[0]
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
    participant_id = models.CharField(
        max_length=200, blank=True, help_text="From the crowd platform (PROLIFIC_PID, workerId...)."
    )
    platform = models.CharField(max_length=20, default="link")
    platform_data = models.JSONField(default=dict, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    calibrated_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    display_checks = models.JSONField(
        default=list, blank=True, help_text="Every display check: viewport, pixel ratio, verdict."
    )
    qc = models.JSONField(default=dict, blank=True, help_text="Quality-control summary.")
    n_trials = models.PositiveIntegerField(default=0, editable=False)

    objects = RaterManager()

    class Meta:
        ordering = ["campaign_id", "created_at", "pk"]
        constraints = [
            # One session per crowd participant and campaign.
            models.UniqueConstraint(
                fields=["campaign", "participant_id"],
                condition=~Q(participant_id=""),
                name="one_session_per_participant",
            ),
        ]

    def __str__(self):
        return self.label or f"rater {self.pk}"

    def get_absolute_url(self):
        return reverse("study:session", args=[self.token])

    def current_trial(self):
        return self.trials.filter(score__isnull=True).select_related("candidate").first()

    def record_vote(self, position, score, duration_ms=None):
        """Store a score for the trial at `position`; True when this call stored it."""
        return self.cast_vote(position, score, duration_ms).stored

    def cast_vote(self, position, score, duration_ms=None):
        """Store a score for the trial at `position`, the rater's current (first unanswered) one.

        Idempotent: a resent vote for an answered trial stores nothing (stored=False). A vote
        for a later trial raises VoteRejected. Returns the vote's outcome with the trials that
        come next (at most two, candidates loaded), so the caller needs no further query.
        One read decides: trials before the current one are all answered and none after it can
        be, so the conditional update on the current trial is the only race to settle.
        """
        pending = list(self.trials.pending().select_related("candidate")[:3])
        current = pending[0] if pending else None
        now = timezone.now()
        if current is None or position != current.position:
            answered = (
                position < current.position
                if current is not None
                else self.trials.filter(position=position).exists()
            )
            if not answered:
                raise VoteRejected("This is not your current image; the page has been refreshed.")
            # A resent vote: its first request may have died before recording the completion.
            if current is None:
                self._complete(now)
            return VoteOutcome(stored=False, upcoming=pending[:2])
        stored = Trial.objects.filter(pk=current.pk, score__isnull=True).update(
            score=score,
            answered_at=now,
            duration_ms=duration_ms,
            flags=vote_flags(current.expected, score, duration_ms, self.campaign.min_view_ms),
        )
        if stored and self.started_at is None:
            Rater.objects.filter(pk=self.pk, started_at__isnull=True).update(started_at=now)
        if len(pending) == 1:
            self._complete(now)
        return VoteOutcome(stored=bool(stored), upcoming=pending[1:3])

    def _complete(self, now):
        if self.completed_at is None:
            Rater.objects.filter(pk=self.pk, completed_at__isnull=True).update(
                completed_at=now, qc=self.quality()
            )

    def quality(self):
        """This session's quality-control summary; reported to the researcher, never applied."""
        votes = list(
            self.trials.answered().values_list(
                "candidate_id", "score", "kind", "flags", "duration_ms", "expected"
            )
        )
        return session_quality(votes, self.campaign.straightline_min_variance, self.display_checks)


def vote_flags(expected, score, duration_ms, min_view_ms):
    flags = []
    if (expected == ">=4" and score < 4) or (expected == "<=2" and score > 2):
        flags.append("gold-miss")
    if duration_ms is not None and min_view_ms and duration_ms < min_view_ms:
        flags.append("too-fast")
    return ",".join(flags)


def session_quality(votes, min_variance, display_checks=()):
    """Summarise (candidate_id, score, kind, flags, duration_ms, expected) rows of one session.

    Returns n, the variance of the scores (straight-lining below `min_variance`), gold items
    missed, test-retest pairs with their mean absolute difference, the median viewing time and
    the list of flags raised.
    """
    scores = [s for _, s, kind, *_ in votes if kind == "rating"]
    n = len(scores)
    mean = sum(scores) / n if n else 0.0
    variance = sum((s - mean) ** 2 for s in scores) / (n - 1) if n > 1 else None
    first = {c: s for c, s, kind, *_ in votes if kind == "rating"}
    pairs = [(first[c], s) for c, s, kind, *_ in votes if kind == "retest" and c in first]
    retest_mad = sum(abs(a - b) for a, b in pairs) / len(pairs) if pairs else None
    gold_items = sum(1 for *_, expected in votes if expected)
    gold_misses = sum("gold-miss" in flags for _, _, _, flags, _, _ in votes)
    durations = sorted(d for _, _, _, _, d, _ in votes if d is not None)
    flags = []
    if variance is not None and n >= 10 and variance < min_variance:
        flags.append("straight-lining")
    if gold_misses:
        flags.append(f"gold-miss x{gold_misses}")
    if retest_mad is not None and retest_mad > 1.0:
        flags.append("retest-unreliable")
    if any(check.get("went_on_anyway") for check in display_checks):
        flags.append("display-too-small")
    return {
        "n": n,
        "n_answered": len(votes),
        "variance": variance,
        "gold_items": gold_items,
        "gold_misses": gold_misses,
        "retest_pairs": len(pairs),
        "retest_mad": retest_mad,
        "median_duration_ms": durations[len(durations) // 2] if durations else None,
        "flags": flags,
    }


class VoteRejected(Exception):
    pass


@dataclass(frozen=True)
class VoteOutcome:
    stored: bool
    upcoming: list


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
    kind = models.CharField(
        max_length=10, default="rating", choices=[("rating", "Rating"), ("retest", "Retest")]
    )
    repeat = models.PositiveSmallIntegerField(default=0, help_text="1 for the retest showing.")
    expected = models.CharField(
        max_length=4, blank=True, help_text="Gold item: '>=4' (HR) or '<=2' (nearest neighbour)."
    )
    shown_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Viewing time measured by the page before the vote."
    )
    flags = models.CharField(max_length=100, blank=True)

    objects = TrialQuerySet.as_manager()

    class Meta:
        # Column names, not relations: ordering by "rater" would join and sort by Rater's ordering.
        ordering = ["rater_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rater", "position"], name="unique_trial_position"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5),
                name="score_1_to_5",
            ),
        ]

    def __str__(self):
        return f"{self.rater} #{self.position}"
