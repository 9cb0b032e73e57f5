"""The metrics of the panel by name, with their conventions (no torch: the web process lists and
checks them; `sr_models.metric_panel` computes them on the workers). See that module for how.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """What a metric measures and how: the conventions a results table must state."""

    label: str
    direction: str  # "higher" or "lower" is better
    reference: str  # "full" or "no"
    channel: str
    data_range: str
    weight_files: tuple[str, ...]
    description: str

    @property
    def needs_weights(self) -> bool:
        return bool(self.weight_files)


@dataclass(frozen=True)
class MetricFailure:
    """A metric that could not be computed for one image pair; `reason` is one line."""

    reason: str


_PIQ = "https://github.com/photosynthesis-team/piq/releases/download/"
# key -> (file name as published, where it is published, what it is)
WEIGHT_FILES = {
    "vgg16": ("vgg16-397923af.pth", "https://download.pytorch.org/models/", "ImageNet VGG16"),
    "lpips": (
        "lpips_weights.pt",
        "https://github.com/photosynthesis-team/photosynthesis.metrics/releases/download/v0.4.0/",
        "LPIPS v0.1 linear layers; vgg.pth of richzhang/PerceptualSimilarity also fits",
    ),
    "dists": ("dists_weights.pt", _PIQ + "v0.4.1/", "DISTS alpha, beta; the authors' fits too"),
    "brisque": ("brisque_svm_weights.pt", _PIQ + "v0.4.0/", "BRISQUE's SVR on LIVE"),
}

_DESCRIPTIONS = {
    "ms_ssim": "Wang, Simoncelli & Bovik (2003): SSIM contrast-structure at 5 dyadic scales, "
    "weights 0.0448 0.2856 0.3001 0.2363 0.1333, 11x11 Gaussian sigma 1.5, K1 0.01, K2 0.03",
    "vif": "Sheikh & Bovik (2006), pixel-domain VIF as vifp_mscale.m: 4 scales, sigma_n^2 = 2",
    "fsim": "Zhang et al. (2011) FSIMc: phase congruency, gradient and I/Q similarity; images "
    "mean-pooled by round(min(H, W) / 256) first, as FSIM.m",
    "gmsd": "Xue et al. (2014): deviation of the Prewitt gradient-magnitude similarity, T = 170, "
    "after 2x2 mean pooling, as GMSD.m",
    "haarpsi": "Reisenhofer et al. (2018): Haar-wavelet similarity on Y plus I/Q, 3 scales, "
    "C = 30, alpha = 4.2, after 2x2 mean pooling",
    "lpips": "Zhang et al. (2018) LPIPS v0.1 on VGG16: ImageNet-normalised input, unit-normalised "
    "relu1_2 ... relu5_3 features, learned channel weights, no resizing",
    "dists": "Ding et al. (2022) DISTS on VGG16 with L2 pooling; shorter side resized to 256 "
    "(antialiased bilinear, like the authors' PIL resize) when longer",
    "brisque": "Mittal et al. (2012): 36 natural-scene statistics at 2 scales, RBF support-vector "
    "regression trained on LIVE (gamma 0.05, rho -153.591); the SR image alone",
}
# name, label, better, reference, channel, data range, weight files
_TABLE = [
    ("ms_ssim", "MS-SSIM", "higher", "full", "Y (BT.601, rgb2y)", "255", ()),
    ("vif", "VIFp", "higher", "full", "Y (BT.601, rgb2y)", "255", ()),
    ("fsim", "FSIMc", "higher", "full", "RGB -> YIQ", "255", ()),
    ("gmsd", "GMSD", "lower", "full", "RGB -> Y of YIQ", "255", ()),
    ("haarpsi", "HaarPSI", "higher", "full", "RGB -> YIQ", "255", ()),
    ("lpips", "LPIPS", "lower", "full", "RGB", "[0, 1]", ("vgg16", "lpips")),
    ("dists", "DISTS", "lower", "full", "RGB", "[0, 1]", ("vgg16", "dists")),
    ("brisque", "BRISQUE", "lower", "no", "RGB -> rounded Y of YIQ", "255", ("brisque",)),
]
METRICS: dict[str, MetricSpec] = {
    row[0]: MetricSpec(*row[1:], _DESCRIPTIONS[row[0]]) for row in _TABLE
}

# 1.2x the time of PSNR + SSIM on a BSD100-size image (bench/bench_metric_panel.py); optional:
# brisque 2x, ms_ssim 3.5x, fsim 20x, vif 28x; lpips and dists 1-2 s each (and weight files).
DEFAULT_PANEL = ("gmsd", "haarpsi")


def missing_weights_message(name: str, missing: Iterable[str]) -> str:
    """One line naming the files a metric needs, where they are published and where to say so."""
    files = "; ".join(
        f"{k!r} = {WEIGHT_FILES[k][1]}{WEIGHT_FILES[k][0]} ({WEIGHT_FILES[k][2]})" for k in missing
    )
    return (
        f"{METRICS[name].label} needs weight files, not downloaded here: {files}; download them "
        "and give their paths in SRMOS_METRIC_WEIGHTS (a JSON object of key -> path)"
    )
