"""The metric panel in a report: which objective metric agrees with people (ITU-T P.1401).

Every metric column of the objective table (PSNR and SSIM first, then the campaign's others)
is judged by :func:`.metric_panel.metric_performance`; the full report adds the comparisons
between metrics (:func:`.metric_panel.compare_metrics`) and one sentence per metric against
PSNR for the paper; the figure is :func:`.metric_panel_plots.panel_figure`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .metric_panel import compare_metrics, label, metric_performance, summary_sentence
from .objective import OBJECTIVE_COLUMNS
from .schema import STIMULUS

PANEL_FILES = ("metric_panel.csv", "metric_comparison.csv")


def panel_metrics(obj: pd.DataFrame | None) -> list[str]:
    """PSNR, SSIM and every further metric column of ``obj``; empty without objective metrics
    or without a metric beyond PSNR and SSIM (correlation.csv covers those two)."""
    if obj is None:
        return []
    extra = [c for c in obj.columns if c not in OBJECTIVE_COLUMNS and c not in STIMULUS]
    return ["psnr", "ssim", *extra] if extra else []


def write_metric_panel(
    put: Callable[[str, pd.DataFrame], None],
    stim: pd.DataFrame,
    obj: pd.DataFrame | None,
    full: bool = True,
    n_boot: int = 1000,
) -> list[str]:
    """Write ``metric_panel.csv`` (and, when ``full``, ``metric_comparison.csv``); returns the
    sentences for the manifest (each further metric against PSNR, pooled stimuli).

    ``full=False`` (the live report page) leaves out the bootstrap intervals and the
    comparisons, which cost seconds on a paper-size campaign."""
    metrics = panel_metrics(obj)
    if not metrics:
        return []
    put(
        "metric_panel.csv",
        metric_performance(stim, obj, metrics, n_boot=n_boot if full else 0),
    )
    if not full:
        return []
    comparisons = compare_metrics(stim, obj, metrics, n_boot=n_boot)
    put("metric_comparison.csv", comparisons)
    return [_against_psnr(comparisons, metric) for metric in metrics[2:]]


def _against_psnr(comparisons: pd.DataFrame, metric: str) -> str:
    """The paper's sentence for one metric against PSNR (pooled stimuli, SROCC, paired
    bootstrap), or why there is none."""
    pair = comparisons[
        comparisons["metric_a"].isin([metric, "psnr"])
        & comparisons["metric_b"].isin([metric, "psnr"])
        & (comparisons["criterion"] == "srocc")
    ]
    if pair.empty or not pair[["value_a", "value_b"]].notna().all(axis=None):
        return (
            f"{label(metric)} could not be compared with PSNR: too few stimuli have both, or one "
            "of them is constant (metric_panel.csv says which)."
        )
    return summary_sentence(comparisons, metric, "psnr")


def draw_metric_panel(stim, obj, out: Path, formats) -> dict[str, Path]:
    """``metric_panel.<format>``: MOS against each metric with its logistic (stimulus level)."""
    from .metric_panel_plots import panel_figure

    metrics = panel_metrics(obj)
    if not metrics:
        return {}
    files = {}
    for ext in formats:
        path = out / f"metric_panel.{ext}"
        files[path.name] = panel_figure(stim, obj, metrics, path)
    return files
