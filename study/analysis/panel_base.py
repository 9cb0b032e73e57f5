"""What the metric panel's modules share: each metric's direction and label, the criteria P.1401
judges, and the fitted scope of one dataset and level."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

D_LOGISTIC = 5  # parameters of the VQEG logistic: P.1401's d in N - d
LOWER_IS_BETTER = frozenset({"gmsd", "lpips", "dists", "niqe", "brisque"})
LABELS = {
    "psnr": "PSNR", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "vif": "VIFp", "fsim": "FSIMc",
    "gmsd": "GMSD", "haarpsi": "HaarPSI", "lpips": "LPIPS", "dists": "DISTS",
    "brisque": "BRISQUE", "niqe": "NIQE",
}  # fmt: skip
_CRITERIA = {
    "srocc": ("SROCC", "higher"), "plcc": ("PLCC", "higher"), "rmse": ("rmse", "lower"),
    "rmse_star": ("rmse*", "lower"), "outlier_ratio": ("outlier ratio", "lower"),
}  # fmt: skip
_STATS = tuple(_CRITERIA)


def label(metric: str) -> str:
    return LABELS.get(metric, metric.upper())


class Fit(NamedTuple):
    """One metric judged on a scope's points: its values, the mapping's parameters (of
    :func:`.objective.vqeg_logistic`; b1 = 0 is a straight line) or None, the mapped values
    or None, and the point estimates (a row of ``metric_panel.csv``, raw SROCC sign)."""

    x: np.ndarray
    params: np.ndarray | None
    pred: np.ndarray | None
    judged: dict


class Scope(NamedTuple):
    """A dataset ("all" pooled) at one level: MOS, ci95 and a :class:`Fit` per metric on its
    judged points, and the counts of points left out (``n_reference``, ``n_missing``)."""

    dataset: str
    level: str
    y: np.ndarray
    ci: np.ndarray
    fits: dict
    counts: dict
