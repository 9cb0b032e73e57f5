"""The metric panel in a report: which objective metric agrees with people (ITU-T P.1401).

Every metric column of the objective table (PSNR and SSIM first, then the campaign's others)
is judged once, on one set of stimuli for all (:func:`.metric_panel.judge_panel`): the table,
the full report's comparisons between metrics and its sentences (each metric against PSNR) come
from that judgement, and so does the figure (:func:`.metric_panel_plots.panel_figure`, which
makes the same one).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .metric_comparison import summary_sentence
from .metric_panel import judge_panel
from .objective import OBJECTIVE_COLUMNS
from .panel_base import label
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
    # One judgement for both files: the same points, fits and resamples (the live page's
    # table has the full report's values and ranks, without the intervals).
    performance, comparisons = judge_panel(
        stim, obj, metrics, n_boot=n_boot if full else 0, compare=full
    )
    put("metric_panel.csv", performance)
    if not full:
        return []
    put("metric_comparison.csv", comparisons)
    return [_against_psnr(comparisons, metric) for metric in metrics[2:]]


def panel_level(
    stim: pd.DataFrame, obj: pd.DataFrame, metrics, level: str, scopes_out: list | None = None
) -> pd.DataFrame:
    """The live page's ``metric_panel.csv`` rows of one level ("stimulus" or "method"), as
    :func:`write_metric_panel` (``full=False``) judges them: the stimulus level's rows and then
    the method level's are its table. ``scopes_out`` receives the judged scopes."""
    return judge_panel(
        stim, obj, metrics, n_boot=0, compare=False, levels=(level,), scopes_out=scopes_out
    )[0]


def panel_stimuli(stim: pd.DataFrame, obj: pd.DataFrame, metrics):
    """:func:`panel_level` at the stimulus level, and its first scope (the one the figure
    draws: the pooled stimuli, or the only dataset's), None when there is none."""
    scopes = []
    table = panel_level(stim, obj, metrics, "stimulus", scopes)
    return table, (scopes[0] if scopes else None)


def _against_psnr(comparisons: pd.DataFrame, metric: str) -> str:
    """The paper's sentence for one metric against PSNR (pooled stimuli, SROCC, paired
    bootstrap), or why there is none."""
    pair = comparisons[
        comparisons["metric_a"].isin([metric, "psnr"])
        & comparisons["metric_b"].isin([metric, "psnr"])
        & (comparisons["criterion"] == "srocc")
        & (comparisons["level"] == "stimulus")
    ]
    if pair.empty or not pair[["value_a", "value_b"]].notna().all(axis=None):
        return (
            f"{label(metric)} could not be compared with PSNR: too few stimuli have every "
            "metric, one of the two has no value, or one is constant (metric_panel.csv says "
            "which)."
        )
    return summary_sentence(comparisons, metric, "psnr")


def draw_metric_panel(
    stim, obj, out: Path, formats, prefix: str = "", scope=None
) -> dict[str, Path]:
    """``metric_panel.<format>``: MOS against each metric with its mapping (stimulus level), from
    the judgement ``metric_panel.csv`` holds: ``scope`` (:func:`panel_stimuli`'s) where the
    tables judged it, else judged here once for every format."""
    from .metric_panel_plots import drawn_scope, panel_figure

    metrics = panel_metrics(obj)
    # Nothing to draw before any metric has a value (metrics still being computed, say): the
    # figure is left out, as metric_panel.csv leaves such metrics out, and the rest is drawn.
    if not metrics or not obj[metrics].notna().any().any():
        return {}
    scope = drawn_scope(stim, obj, metrics) if scope is None else scope
    files = {}
    for ext in formats:
        path = out / f"metric_panel.{ext}"
        files[path.name] = panel_figure(stim, obj, metrics, path, prefix=prefix, scope=scope)
    return files
