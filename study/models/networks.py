"""A researcher's own network as a registration row: the uploaded file waits in storage (stored
once per content hash), a worker claims the row (queued -> running -> valid / refused), loads the
model, runs it on small inputs and either creates the method or says why not. Nothing is
half-registered: the Method row exists only once a worker has validated the file.

Loading a model runs code (a pickle's, a TorchScript graph's, the researcher's class), so only
staff with the ``study.register_model`` permission may register one (docs/models.md, trust).
"""

import hashlib
import os
import tempfile

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import models
from django.utils import timezone

from study.models.jobs import JobQuerySet, JobRow
from study.storage import DiskFull

# How a file becomes a network (sr_models.external.load_model's routes).
ROUTES = [
    ("auto", "Detect from the file"),
    ("spandrel", "Checkpoint of a known architecture (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT...)"),
    ("torchscript", "TorchScript file"),
    ("export", "torch.export program (.pt2)"),
    ("class", "Your own class (dotted path) with a state dict"),
    ("srmos", "An srmos checkpoint (python -m sr_models.train --export)"),
]
RANGES = [("0,1", "[0, 1]"), ("-1,1", "[-1, 1]")]
CHANNELS = [("rgb", "RGB"), ("bgr", "BGR")]
MODEL_SUFFIXES = (".pth", ".pt", ".pt2", ".ckpt", ".safetensors", ".bin", ".zip")
CHUNK = 1 << 20


def store_model_file(fileobj, original_name):
    """Hash an uploaded or local model file (sha256) and store it once under ``models/``.

    Returns ``(path in storage, sha256, size)``; the same content uploaded twice is stored once.
    The file appears whole or not at all (`study.storage`): a stored path is a complete file.
    Raises `study.storage.DiskFull` (an OSError) with the researcher's words on a full disk.
    """
    suffix = os.path.splitext(original_name)[1].lower()
    if suffix not in MODEL_SUFFIXES:
        suffix = ".bin"
    digest = hashlib.sha256()
    size = 0
    with tempfile.TemporaryFile() as tmp:
        for chunk in iter(lambda: fileobj.read(CHUNK), b""):
            digest.update(chunk)
            tmp.write(chunk)
            size += len(chunk)
        sha = digest.hexdigest()
        path = f"models/{sha}{suffix}"
        if not default_storage.exists(path):
            tmp.seek(0)
            try:
                saved = default_storage.save(path, File(tmp))
            except DiskFull as full:
                raise full.advise(
                    why=f"the model file {original_name} is that large",
                    resume="register it again (nothing was stored)",
                ) from full.__cause__
            if saved != path:  # written meanwhile by a concurrent upload of the same file
                default_storage.delete(saved)
    return path, sha, size


class ModelRegistration(JobRow, models.Model):
    HEARTBEAT = True  # a dead worker's check is taken over one lease later, not after 31 min
    QUEUED = "queued"
    RUNNING = "running"
    VALID = "valid"
    REFUSED = "refused"
    STATUS_CHOICES = [
        (QUEUED, "Queued for a worker"),
        (RUNNING, "Being validated"),
        (VALID, "Registered"),
        (REFUSED, "Refused"),
    ]

    # What the researcher asked for.
    slug = models.SlugField(max_length=64, help_text="The method's name in every table.")
    name = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    route = models.CharField(max_length=12, choices=ROUTES, default="auto")
    class_path = models.CharField(
        max_length=200, blank=True, help_text='Own class: "package.module:ClassName".'
    )
    kwargs = models.JSONField(default=dict, blank=True, help_text="Own class: its arguments.")
    input_range = models.CharField(max_length=5, choices=RANGES, default="0,1")
    output_range = models.CharField(max_length=5, choices=RANGES, default="0,1")
    channels = models.CharField(max_length=3, choices=CHANNELS, default="rgb")
    scale = models.PositiveSmallIntegerField(default=4, help_text="What the model should do.")
    half_requested = models.BooleanField(
        default=False, help_text="Run in half precision on a GPU, if it matches fp32."
    )
    # The file.
    file = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField(default=0)
    original_name = models.CharField(max_length=255, blank=True)
    # The job.
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    claim = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # What the worker found.
    architecture = models.CharField(max_length=100, blank=True)
    parameter_count = models.BigIntegerField(null=True, blank=True)
    detected_route = models.CharField(max_length=12, blank=True)
    half_ok = models.BooleanField(null=True, blank=True)
    half_note = models.TextField(blank=True)
    peak_memory_mb = models.FloatField(null=True, blank=True)
    validation_seconds = models.FloatField(null=True, blank=True)
    method = models.OneToOneField(
        "study.Method",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="registration",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When its task was last published (the reconciler publishes it again if the message was
    # lost), and until when its worker is known alive (renewed by the check's heartbeat).
    queued_at = models.DateTimeField(default=timezone.now)
    lease_expires = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("register_model", "Can register model files (loading one runs its code on workers)")
        ]

    def __str__(self):
        return f"model {self.slug} ({self.get_status_display().lower()})"

    @property
    def convention(self):
        """The declared convention of an own class (other routes read theirs from the model)."""
        return {
            "input_range": self.input_range,
            "output_range": self.output_range,
            "channel_order": self.channels,
        }

    @property
    def settled(self):
        return self.status in (self.VALID, self.REFUSED)

    def load_options(self):
        """What the worker passes to sr_models.external.load_model besides the path: the route
        (None: detect it), the scale, and for an own class its path and arguments. A declared
        convention other than RGB in [0, 1] both ways goes with any route (spandrel and srmos
        models have their own, so a different one is refused there)."""
        options = {"route": None if self.route == "auto" else self.route, "scale": self.scale}
        if self.route == "class":
            options.update(class_path=self.class_path, kwargs=self.kwargs)
        if self.route == "class" or self.convention != STANDARD_CONVENTION:
            options["convention"] = self.convention
        return options


STANDARD_CONVENTION = {"input_range": "0,1", "output_range": "0,1", "channel_order": "rgb"}
