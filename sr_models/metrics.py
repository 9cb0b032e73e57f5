"""PSNR and SSIM with the field's conventions written in the signatures.

Conventions (EDSR/RCAN/ESRGAN tables, MATLAB): Y channel of MATLAB's `rgb2ycbcr` (ITU-R BT.601,
Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in [0, 1]; on uint8 images MATLAB returns
Y rounded to integers, which moves PSNR by ~0.02 dB), `crop_border` pixels removed from every
side (the scale, usually), data range 255, float64 maths. SSIM is Wang et al. (IEEE TIP 2004):
11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, averaged over the valid region,
computed with scikit-image's `structural_similarity`.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2ycbcr
from skimage.metrics import structural_similarity


def rgb2y(img: np.ndarray) -> np.ndarray:
    """Y of MATLAB `rgb2ycbcr` in [16, 235] as float64; rounded to integers for uint8 input.

    A grey image (HxW, or HxWx1) is returned as is (as float64): it is treated as luma already.
    """
    img = np.asarray(img)
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0].astype(np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected HxW or HxWx3, got shape {img.shape}")
    if img.dtype == np.uint8:
        y = rgb2ycbcr(img)[..., 0]
        # MATLAB rounds half away from zero; Y is positive.
        return np.floor(y + 0.5)
    # Float input is taken in [0, 255], like the uint8 range.
    return rgb2ycbcr(img.astype(np.float64) / 255.0)[..., 0]


def _prepare(img1, img2, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(img1), np.asarray(img2)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    grey = a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1)
    if y_channel or grey:
        a, b = rgb2y(a), rgb2y(b)
    else:
        a, b = a.astype(np.float64), b.astype(np.float64)
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border, ...]
        b = b[crop_border:-crop_border, crop_border:-crop_border, ...]
    if a.size == 0:
        raise ValueError(f"nothing left after cropping {crop_border} pixels from each border")
    return a, b


def psnr(img1: np.ndarray, img2: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """Peak signal-to-noise ratio in dB, data range 255; inf for identical images.

    Args:
        img1, img2: images of equal shape, HxWx3 RGB or HxW grey, values in [0, 255].
        crop_border: pixels removed from each border before measuring (the scale, usually).
        y_channel: measure on the BT.601 Y channel (MATLAB `rgb2ycbcr`); else on all channels.
    """
    a, b = _prepare(img1, img2, crop_border, y_channel)
    mse = np.mean((a - b) ** 2, dtype=np.float64)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def ssim(img1: np.ndarray, img2: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """Structural similarity of Wang et al. (2004), data range 255; 1.0 for identical images.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population covariances, mean over
    the region where the window fits (MATLAB's `ssim_index` 'valid' filtering). On RGB with
    `y_channel=False` the mean over the three channels.
    """
    a, b = _prepare(img1, img2, crop_border, y_channel)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after cropping, got {a.shape[:2]}")
    return float(
        structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255.0,
            K1=0.01,
            K2=0.03,
            channel_axis=2 if a.ndim == 3 else None,
        )
    )
