"""A campaign (the study's design and state) and its candidates, one per image and method."""

from django.core.validators import URLValidator
from django.db import models
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.utils import timezone

from study.models.candidate import CALIBRATION_METHODS, Candidate
from study.models.catalog import Dataset, Method, SourceImage, paper_order
from study.models.design import (
    DESIGN_FIELDS,
    KERNEL_CHOICES,
    DesignFrozen,
    check_kernel,
    lr_mismatches,
    lr_of,
    refuse_frozen_m2m,
    scale_mismatches,
)
from study.models.lifecycle import CampaignLifecycle
from study.models.metrics import check_metrics, default_metrics
from study.models.protocol import protocol_choices, protocol_of
from study.models.texts import DEFAULT_CONSENT, DEFAULT_INSTRUCTIONS
from study.models.tokens import completion_code, rater_token

# Faster than anyone judges an image's quality, slower than a double key press (40-100 ms).
VOTE_FLOOR_MS = 300


class CampaignQuerySet(models.QuerySet):
    def for_user(self, user, change=False):
        """The campaigns `user` may see, or with `change` alter. Permissions are per model (the
        admin's view and change permissions), so a researcher sees every campaign or none."""
        allowed = user.has_perm("study.change_campaign") or (
            not change and user.has_perm("study.view_campaign")
        )
        return self if allowed else self.none()


def get_campaign_for(request, pk, change=False):
    """The campaign a researcher's page asks for; 404 for one that does not exist and for one
    they may not see (or, with `change`, alter), so an outsider learns nothing."""
    return get_object_or_404(Campaign.objects.for_user(request.user, change), pk=pk)


class Campaign(CampaignLifecycle, models.Model):
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
        max_length=32,
        default="matlab-bicubic",
        choices=KERNEL_CHOICES,
        help_text="How HR images are degraded to LR (sr_models.degrade).",
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
    ACR = "acr"
    DCR = "dcr"
    PC = "pc"
    protocol = models.CharField(
        max_length=8,
        choices=protocol_choices,
        default=ACR,
        help_text="How raters judge: absolute category rating, degradation category rating "
        "against the HR reference (needs the HR method among the methods), or paired "
        "comparison (study.protocols).",
    )
    FULL = "full"
    RANDOM = "random"
    ACTIVE = "active"
    pair_design = models.CharField(
        max_length=6,
        choices=[
            (FULL, "Full: every pair of methods for every image"),
            (RANDOM, "Random pairs per image (seeded)"),
            (ACTIVE, "Active sampling: the most informative pairs given the votes so far (ASAP)"),
        ],
        default=FULL,
        help_text="Paired comparison only: which pairs each rater judges.",
    )
    mos_campaign = models.ForeignKey(
        "self",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"protocol": "acr"},
        help_text="Paired comparison: an ACR campaign of the same images and methods whose MOS "
        "the report sets against this campaign's JOD (mos_vs_jod.csv).",
    )
    pairs_per_image = models.PositiveSmallIntegerField(
        default=3, help_text="Paired comparison, random and active designs: pairs per image."
    )
    metrics_changed_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When metrics were last computed later."
    )
    # Not design: a metric added to a finished campaign is computed for its existing candidates.
    metrics = models.JSONField(
        default=default_metrics,
        blank=True,
        validators=[check_metrics],
        help_text="Objective metrics beyond PSNR/SSIM, computed by the workers for every "
        "candidate (docs/analysis.md, metric panel).",
    )
    rater_links = models.PositiveIntegerField(
        default=5, help_text="Secret rater links to make; raise it and launch again to add more."
    )
    # The rater's session (issue 5): texts, display policy, calibration and quality control.
    consent_text = models.TextField(
        default=DEFAULT_CONSENT,
        help_text="Shown on the welcome page; {minutes} becomes the session length estimate.",
    )
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
    vote_floor_ms = models.PositiveIntegerField(
        default=VOTE_FLOOR_MS,
        help_text="The server refuses a vote that arrives sooner than this after its image was "
        "handed to the page (milliseconds): a double key press cannot score an unseen image.",
    )
    sessions_per_client = models.PositiveSmallIntegerField(
        default=1,
        help_text="Open link: sessions one browser at one network address may start, unfinished "
        "ones included (0: no limit). Raise it for a lab where people share a computer.",
    )
    rushed_sessions = models.CharField(
        max_length=10,
        choices=[
            ("flag", "Flag the session, show the completion code"),
            ("withhold", "Flag the session and withhold the completion code"),
        ],
        default="flag",
        help_text="A session finished faster than min_view_ms per image allows, by the server's "
        "clock (a script, or a rater clicking through).",
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

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # A kernel is checked when it is set, so a campaign saved before the check existed
        # (with a kernel no longer in the registry) can still be edited, closed or cloned.
        if self._state.adding or self.kernel != getattr(self, "_loaded_kernel", None):
            check_kernel(self.kernel)
        self.refuse_design_change(kwargs.get("update_fields"))
        super().save(*args, **kwargs)
        self._loaded_kernel = self.kernel

    @classmethod
    def from_db(cls, db, field_names, values):
        campaign = super().from_db(db, field_names, values)
        campaign._loaded_kernel = campaign.__dict__.get("kernel")
        return campaign

    def design_frozen(self):
        """True once candidates exist: the design is then what they were made with."""
        return self.pk is not None and self.candidates.exists()

    def refuse_design_change(self, update_fields=None):
        """Raise DesignFrozen when this unsaved state changes a frozen design field."""
        watched = [f for f in DESIGN_FIELDS if update_fields is None or f in update_fields]
        if not watched or not self.design_frozen():
            return
        attnames = [self._meta.get_field(f).attname for f in watched]
        stored = Campaign.objects.filter(pk=self.pk).values(*attnames).first() or {}
        for field, attname in zip(watched, attnames, strict=True):
            if attname in stored and stored[attname] != getattr(self, attname):
                raise DesignFrozen(self.name, field)

    @property
    def kind(self):
        """The campaign's protocol object (study.models.protocol): what differs between ACR,
        DCR, paired comparison and any protocol registered later."""
        return protocol_of(self.protocol)

    def lr_by_method(self):
        """{method slug: how its LR inputs were made}, for every method, in the paper's order."""
        return {m.slug: self.lr_of(m) for m in paper_order(self.methods.all())}

    def lr_of(self, method):
        """How `method`'s LR inputs were made in this campaign (recorded in every export)."""
        return lr_of(method, self)

    def lr_warnings(self):
        """Imported methods whose LR inputs were made another way than the campaign's."""
        return lr_mismatches(self.methods.all(), self) if self.pk else []

    def progress(self):
        counts = dict(self.candidates.values_list("status").annotate(n=Count("id")))
        return {status: counts.get(status, 0) for status, _ in Candidate.STATUS_CHOICES}

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

    def lr_description(self):
        if self.lr_source == self.LR_DATASET:
            return f"dataset LR images (x{self.scale})"
        return f"HR degraded x{self.scale} with {self.kernel}"

    def update_generation_status(self):
        """Move a generating campaign to ready once every candidate is done and has each of the
        campaign's metrics (a value, or the reason it has none)."""
        unfinished = self.candidates.exclude(status=Candidate.DONE)
        if not self.candidates.exists() or unfinished.exists():
            return
        if self.metrics and self.candidates.waiting_for_metrics(self.metrics).exists():
            return  # the metric task settles it (and the reconciler, if its message was lost)
        # Conditional update: when the last two tasks finish together both may get here.
        Campaign.objects.filter(pk=self.pk, status=self.GENERATING).update(status=self.READY)

    def metrics_waiting(self):
        """{metric: how many made candidates still wait for it}, for metrics some wait for."""
        waiting = {}
        for name in self.metrics:
            n = self.candidates.waiting_for_metrics([name]).count()
            if n:
                waiting[name] = n
        return waiting

    def metrics_waiting_text(self, waiting=None):
        """E.g. "8 candidates still wait for gmsd, 3 for haarpsi" ("" when none waits): the
        words the campaign page, the progress panel and launch use."""
        waiting = self.metrics_waiting() if waiting is None else waiting
        if not waiting:
            return ""
        (name, n), *rest = waiting.items()
        head = f"{n} candidate{'s' * (n != 1)} still wait{'s' * (n == 1)} for {name}"
        return ", ".join([head, *(f"{m} for {other}" for other, m in rest)])

    def refuse_generation(self):
        """Why candidates cannot be (re)made now, or "" when they can."""
        if self.status in (self.LIVE, self.CLOSED):
            return (
                f"Campaign {self.name} is {self.get_status_display().lower()}: its candidates "
                "are final (raters score them and the exports describe them). Clone the "
                "campaign to generate a new design."
            )
        return " ".join(self.design_problems(self.methods.select_related("registration")))

    def design_problems(self, methods):
        """Why this design cannot run with `methods` (a form checks them before saving them):
        the protocol's requirements and methods made for another scale."""
        try:
            kind = self.kind
        except LookupError as exc:
            return [str(exc)]
        return [*kind.requirements(list(methods), self), *scale_mismatches(methods, self.scale)]


for _through in (Campaign.datasets.through, Campaign.methods.through):
    models.signals.m2m_changed.connect(refuse_frozen_m2m, sender=_through)
