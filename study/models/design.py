"""What a campaign's design is, and why it freezes once candidates exist.

The design (datasets, methods, scale, kernel, LR source, seed, calibration and quality-control
set-up) is what its images, votes and exports say it was. After the first candidate is made,
changing it would make every export describe a study that never ran, so the admin form, a
tampered POST, a command and `Model.save()` all refuse it, naming the field and the remedy.
"""

from sr_models.degrade import KERNELS
from study.models.catalog import Method

# Fields of Campaign that are the design (a ForeignKey by its name, not its attname).
DESIGN_FIELDS = (
    "protocol",
    "pair_design",
    "pairs_per_image",
    "scale",
    "kernel",
    "lr_source",
    "seed",
    "calibration_dataset",
    "calibration_images",
    "gold_items",
    "retest_share",
)
DESIGN_M2M = ("datasets", "methods")
KERNEL_CHOICES = [(k, k) for k in KERNELS]


class DesignFrozen(ValueError):
    """A change to a campaign's design after its candidates were made."""

    def __init__(self, campaign_name, field):
        self.field = field
        super().__init__(
            f"The design of campaign {campaign_name} is frozen because its candidates exist: "
            f"'{field}' cannot change (the images, votes and exports were made with its current "
            "value). Clone the campaign (the Clone action) to run a study with a new design."
        )


def check_kernel(kernel):
    """Refuse a kernel the registry does not have, with the list of those it has."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}: choose one of {', '.join(KERNELS)}")


def scale_mismatches(methods, scale):
    """One message per registered network that does not upscale by the campaign's scale."""
    problems = []
    for method in methods:
        registration = getattr(method, "registration", None) if method.pk else None
        if registration is not None and registration.scale != scale:
            problems.append(
                f"{method.slug} upscales x{registration.scale}, the campaign needs x{scale}: "
                f"register a x{scale} model or change the campaign's scale."
            )
    return problems


def lr_of(method, campaign):
    """How the LR input of `method`'s images in `campaign` was made, in words for exports."""
    if method.kind == Method.REFERENCE:
        return "none (the HR original)"
    if method.kind != Method.IMPORTED:
        return campaign.lr_description()
    made = method.lr_input or Method.LR_UNKNOWN
    if made == Method.LR_UNKNOWN:
        return "unknown (imported results)"
    if made == Method.LR_DATASET:
        return f"dataset LR images (x{campaign.scale}) (imported results)"
    return f"HR degraded x{campaign.scale} with {made} (imported results)"


def lr_mismatches(methods, campaign):
    """One warning per imported method whose LR inputs were not made the campaign's way."""
    own = Method.LR_DATASET if campaign.lr_source == campaign.LR_DATASET else campaign.kernel
    warnings = []
    for method in methods:
        if method.kind == Method.IMPORTED and (method.lr_input or Method.LR_UNKNOWN) != own:
            warnings.append(
                f"{method.slug}: its results were made from LR inputs '{lr_of(method, campaign)}'"
                f", while the campaign's methods get '{campaign.lr_description()}': their MOS "
                "compare different inputs."
            )
    return warnings


def refuse_frozen_m2m(sender, instance, action, reverse, pk_set, **kwargs):
    """m2m_changed receiver: datasets and methods of a campaign with candidates cannot be added
    or removed, from either side of the relation."""
    if action not in ("pre_add", "pre_remove", "pre_clear"):
        return
    if action != "pre_clear" and not pk_set:
        return  # adding what is there already, or removing nothing: no change
    field = "datasets" if sender._meta.model_name.endswith("datasets") else "methods"
    if not reverse:
        campaigns = [instance]
    elif action == "pre_clear":
        campaigns = list(instance.campaigns.all())
    else:
        campaigns = list(instance.campaigns.model.objects.filter(pk__in=pk_set))
    for campaign in campaigns:
        if campaign.design_frozen():
            raise DesignFrozen(campaign.name, field)
