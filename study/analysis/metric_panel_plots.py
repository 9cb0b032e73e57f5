"""The metric panel at a glance: MOS against each metric, with the monotonic mapping fitted."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .mapping import vqeg_logistic
from .metric_panel import FIRST, _fits
from .panel_base import LOWER_IS_BETTER, Fit, label
from .plots import _figure, _margins


def mapping_curve(fit: Fit, points: int = 200) -> tuple[np.ndarray, np.ndarray] | None:
    """The fitted mapping of a metric over its judged values' range, as drawn: (x, MOS), or
    None where the metric was not mapped."""
    if fit.params is None:
        return None
    grid = np.linspace(fit.x.min(), fit.x.max(), points)
    return grid, vqeg_logistic(grid, *fit.params)


def panel_figure(
    stim_table: pd.DataFrame,
    objective: pd.DataFrame,
    metrics,
    path,
    lower_better=LOWER_IS_BETTER,
    level: str = "stimulus",
    dataset: str | None = None,
    prefix: str = "",
    scope=None,
) -> Path:
    """Small multiples, one per metric, best agreement first: MOS (y) against the metric (x) on
    the panel's common points, the mapping fitted there (dashed where a straight line) and the
    metric's rank, agreement, PLCC and n in the title, as ``metric_panel.csv`` has them (the
    same judgement, :func:`study.analysis.metric_panel.judge_panel`); drawn on matplotlib's Agg
    canvas.

    Args:
        stim_table: :func:`study.analysis.mos_per_stimulus` output.
        objective: ``dataset, image, method`` and the metric columns (see
            :func:`study.analysis.metric_panel.metric_performance`).
        metrics: the metric columns to judge and draw (a metric without any value is left out).
        path: output file; its suffix (.png, .pdf, .svg) chooses the format.
        level: "stimulus" (a point per image x method) or "method" (per dataset x method).
        dataset: one dataset's points; default all datasets pooled.
        prefix: a heading over the panels ("SIMULATED - " for a pilot's votes); none when empty.
        scope: the judged points and fits to draw (:func:`drawn_scope`'s), when the caller has
            them: not judged again.
    Returns:
        The path written.
    """
    if scope is None:
        scope = drawn_scope(stim_table, objective, metrics, level, dataset)
    if not scope.fits:
        raise ValueError("no metric has a value for a stimulus with a MOS: nothing to draw")
    sign = {m: -1 if m in lower_better else 1 for m in scope.fits}
    agreement = {m: sign[m] * f.judged["srocc"] for m, f in scope.fits.items()}
    ranks = pd.Series(agreement, dtype=float).rank(ascending=False, method="min")
    drawn = sorted(scope.fits, key=lambda m: np.nan_to_num(ranks[m], nan=np.inf))
    ncols = min(4, len(drawn))
    nrows = math.ceil(len(drawn) / ncols)
    fig, axes = _figure(nrows, ncols, (3.0 * ncols, 2.9 * nrows))
    for ax in axes.flat[len(drawn) :]:
        ax.set_visible(False)
    for ax, m in zip(axes.flat, drawn, strict=False):
        _panel(ax, m, scope.fits[m], scope.y, ranks[m], agreement[m], m in lower_better)
    # A heading needs its own line above the first row's two-line titles.
    _margins(fig, 0.5, 0.15, 0.45, 0.7 if prefix else 0.45, wspace=0.35, hspace=0.75)
    if prefix:
        height = fig.get_size_inches()[1]
        fig.suptitle(f"{prefix}MOS against each metric", fontsize=9, y=1 - 0.08 / height, va="top")
    import matplotlib

    path = Path(path)
    # Text stays text in the SVG, as in every other figure of the report (plots._save): editable,
    # and written in a fifth of the time of glyph outlines.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path, dpi=150, metadata={"Date": None} if path.suffix == ".svg" else None)
    return path


def drawn_scope(stim_table, objective, metrics, level: str = "stimulus", dataset=None):
    """The judged scope :func:`panel_figure` draws: ``dataset``'s, or the first (the pooled
    stimuli where there are several datasets). Only that scope is judged (the pooled one of
    three datasets is a quarter of the fits)."""
    only = FIRST if dataset is None else dataset
    judged = _fits(stim_table, objective, list(metrics), [level], only=only)[0]
    scopes = {s.dataset: s for s in judged}
    if dataset is not None and dataset not in scopes:
        known = {s.dataset for s in _fits(stim_table, objective, list(metrics), [level])[0]}
        if known:
            raise ValueError(f"no dataset {dataset!r} among {', '.join(map(str, known))}")
    if not scopes or not any(len(s.y) for s in scopes.values()):
        raise ValueError("no stimulus has both a MOS and a metric value: nothing to draw")
    return scopes[dataset] if dataset is not None else next(iter(scopes.values()))


def _panel(ax, metric: str, fit: Fit, y: np.ndarray, rank, agreement, lower: bool) -> None:
    """One metric's scatter, mapping and title."""
    few = len(y) < 100
    # Points as one bitmap inside an SVG/PDF (a thousand vector dots weigh 700 kB and
    # slow every viewer); axes, text and the fitted curve stay vector.
    ax.scatter(
        fit.x, y, s=16 if few else 6, alpha=0.8 if few else 0.4, linewidths=0, rasterized=not few
    )
    curve = mapping_curve(fit)
    if curve is not None:  # the mapping metric_panel.csv judged (a line: d = 2, dashed)
        ax.plot(*curve, color="tab:red", ls="--" if fit.judged["d"] == 2 else "-")
    arrow = "\u2193 lower is better" if lower else "\u2191 higher is better"
    place = f"#{int(rank)} " if np.isfinite(rank) else ""
    ax.set_title(
        f"{place}{label(metric)} ({arrow})\nagreement {agreement:.2f}, "
        f"PLCC {fit.judged['plcc']:.2f}, n = {len(y)}",
        fontsize=8,
    )
    ax.set_xlabel(label(metric), fontsize=8)
    ax.set_ylabel("MOS", fontsize=8)
    ax.tick_params(labelsize=7)
