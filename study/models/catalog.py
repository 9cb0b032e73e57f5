"""What a study is made of: datasets of HR images (with their own LR versions, if any), the
methods that upscale them, and results made elsewhere. The lowest rooms of the data path."""

from django.db import models
from django.utils import timezone

from sr_models.degrade import KERNELS


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


# What a method is: fixed once any campaign has made candidates with it.
FROZEN_METHOD_FIELDS = ("kind", "parameters", "lr_input")


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
    # How an imported method's LR inputs were made (the SRGAN authors did not use MATLAB's
    # bicubic): a kernel name, the dataset's own LR images, or unknown.
    LR_DATASET = "dataset"
    LR_UNKNOWN = "unknown"
    lr_input = models.CharField(
        max_length=20,
        blank=True,
        choices=[
            ("", "Made by the campaign (not imported)"),
            *[(k, f"HR degraded with {k}") for k in KERNELS],
            (LR_DATASET, "The dataset's own LR images"),
            (LR_UNKNOWN, "Unknown"),
        ],
        help_text="Imported results: how the LR images they were made from were produced.",
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    def save(self, *args, **kwargs):
        if self.in_use():
            stored = Method.objects.filter(pk=self.pk).values(*FROZEN_METHOD_FIELDS).first()
            for field, value in (stored or {}).items():
                if getattr(self, field) != value:
                    raise ValueError(
                        f"Method {self.slug} has candidates in a campaign, so '{field}' cannot "
                        "change (exports would describe images it did not make). Register the "
                        "changed method under a new name."
                    )
        super().save(*args, **kwargs)

    def in_use(self):
        """True once a campaign has candidates of this method: what it is is then on record."""
        return self.pk is not None and self.candidates.exists()

    @property
    def sr_method(self):
        return self.parameters.get("sr_method", self.slug)

    def paper_order_key(self):
        """Where the method goes in the paper's tables and figures: interpolation (nearest,
        bicubic, lanczos), networks, imported results, the HR reference last. Within a kind,
        the methods the paper has come in its Table 2 order; the others follow in the order
        they were added to srmos (a researcher's own models after the paper's), not by name."""
        return (
            PAPER_KIND_ORDER.get(self.kind, len(PAPER_KIND_ORDER)),
            PAPER_METHOD_ORDER.get(self.slug, len(PAPER_METHOD_ORDER)),
            self.pk or 0,
            self.slug,
        )


PAPER_KIND_ORDER = {
    Method.INTERPOLATION: 0,
    Method.NETWORK: 1,
    Method.IMPORTED: 2,
    Method.REFERENCE: 3,
}
# Table 2 of Ledig et al. (2017), left to right, with srmos' slugs for the same methods.
PAPER_METHOD_ORDER = {
    slug: i
    for i, slug in enumerate(
        [
            "nearest",
            "bicubic",
            "lanczos",
            "srcnn",
            "selfexsr",
            "drcn",
            "espcn",
            "srresnet-mse",
            "srresnet-mse-authors",
            "srresnet-vgg22",
            "srgan-mse",
            "srgan-vgg22",
            "srgan-vgg54",
            "hr",
        ]
    )
}


def paper_order(methods):
    """The methods sorted as the paper lays them out (see Method.paper_order_key)."""
    return sorted(methods, key=Method.paper_order_key)


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
