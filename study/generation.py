"""Turn (source image, method) into a candidate PNG with its PSNR/SSIM. No ORM writes here."""

import io
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from sr_models.degrade import degrade, modcrop
from sr_models.methods import get_method
from sr_models.metrics import psnr, ssim
from study.models import Method


@dataclass(frozen=True)
class Rendered:
    path: str
    width: int
    height: int
    psnr: float
    ssim: float


def read_source(image):
    with default_storage.open(image.file.name, "rb") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


def encode_png(array):
    # Pillow writes no text chunks unless asked: the file carries no name or method.
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def upscale(method, hr, scale, kernel):
    if method.kind == Method.REFERENCE:
        return hr
    if method.kind in (Method.INTERPOLATION, Method.NETWORK):
        lr = degrade(hr, scale, kernel=kernel)
        return get_method(method.sr_method, scale=scale).upscale(lr)
    raise ValueError(f"method {method.slug}: kind {method.kind!r} cannot be generated here")


def render_candidate(candidate):
    scale = candidate.campaign.scale
    hr = modcrop(read_source(candidate.image), scale)
    sr = upscale(candidate.method, hr, scale, candidate.campaign.kernel)
    if sr.shape != hr.shape:
        raise ValueError(f"{candidate.method.slug} returned {sr.shape}, expected {hr.shape}")
    path = candidate.output_path()
    if default_storage.exists(path):
        default_storage.delete(path)
    saved = default_storage.save(path, ContentFile(encode_png(sr)))
    return Rendered(
        path=saved,
        width=sr.shape[1],
        height=sr.shape[0],
        psnr=psnr(hr, sr, crop_border=scale, y_channel=True),
        ssim=ssim(hr, sr, crop_border=scale, y_channel=True),
    )
