"""The images a method starts from: the HR source modcropped to the scale, and the LR input
made from it (the campaign's kernel, or the dataset's own LR image). No torch here: the web
process uses it too (the comparison viewer shows the LR input)."""

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image

from sr_models.degrade import degrade, modcrop
from study.models import LowResImage


def read_png(name):
    with default_storage.open(name, "rb") as fh:
        image = Image.open(fh)
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def read_source(image):
    return read_png(image.file.name)


def hr_for(image, scale):
    """(HR modcropped to `scale`, a note on what was cropped or "")."""
    raw = read_source(image)
    hr = modcrop(raw, scale)
    if hr.shape == raw.shape:
        return hr, ""
    return hr, (
        f"HR {raw.shape[1]}x{raw.shape[0]} modcropped to {hr.shape[1]}x{hr.shape[0]} for x{scale}"
    )


def lr_input(campaign, image, hr):
    """The LR image the campaign's methods get for `image` (whose modcropped HR is `hr`)."""
    scale = campaign.scale
    if campaign.lr_source != campaign.LR_DATASET:
        return degrade(hr, scale, kernel=campaign.kernel)
    stored = LowResImage.objects.filter(image=image, scale=scale).first()
    if stored is None:
        raise ValueError(f"{image} has no LR image for x{scale} in its dataset")
    lr = read_png(stored.file.name)
    if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
        raise ValueError(
            f"LR {stored.original_name} is {lr.shape[1]}x{lr.shape[0]}: x{scale} is not the HR's "
            f"{hr.shape[1]}x{hr.shape[0]}"
        )
    return lr
