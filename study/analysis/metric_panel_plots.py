"""The metric panel at a glance: MOS against each metric, with the logistic that maps it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .metric_panel import LOWER_IS_BETTER, _fits, label
from .objective import fit_logistic, vqeg_logistic
from .plots import _figure, _margins


def panel_figure(
    stim_table: pd.DataFrame,
    objective: pd.DataFrame,
    metrics,
    path,
    lower_better=LOWER_IS_BETTER,
    level: str = "stimulus",
    dataset: str | None = None,
) -> Path:
    """Small multiples, one per metric: MOS (y) against the metric (x), the fitted VQEG logistic
    and the metric's SROCC, PLCC and n in the title; drawn on matplotlib's Agg canvas.

    Args:
        stim_table: :func:`study.analysis.mos_per_stimulus` output.
        objective: ``dataset, image, method`` and the metric columns (see
            :func:`study.analysis.metric_panel.metric_performance`).
        metrics: the metric columns to draw, in panel order.
        path: output file; its suffix (.png, .pdf, .svg) chooses the format.
        level: "stimulus" (a point per image x method) or "method" (per dataset x method).
        dataset: one dataset's points; default all datasets pooled.
    Returns:
        The path written.
    """
    metrics = list(metrics)
    scopes = {ds: (y, fits) for ds, _, y, _, fits in _fits(stim_table, objective, metrics, [level])}
    if not scopes:
        raise ValueError("no stimulus has both a MOS and a metric value: nothing to draw")
    if dataset is not None and dataset not in scopes:
        raise ValueError(f"no dataset {dataset!r} among {', '.join(map(str, scopes))}")
    y, fits = scopes[dataset] if dataset is not None else next(iter(scopes.values()))
    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = _figure(nrows, ncols, (3.0 * ncols, 2.9 * nrows))
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, m in zip(axes.flat, metrics, strict=False):
        ok, x, _, judged = fits[m]
        few = ok.sum() < 100
        # Points as one bitmap inside an SVG/PDF (a thousand vector dots weigh 700 kB and
        # slow every viewer); axes, text and the fitted curve stay vector.
        ax.scatter(
            x[ok],
            y[ok],
            s=16 if few else 6,
            alpha=0.8 if few else 0.4,
            linewidths=0,
            rasterized=not few,
        )
        grid = np.linspace(*((x[ok].min(), x[ok].max()) if ok.any() else (0, 1)), 200)
        if judged["d"] == 5:  # the same fit as metric_performance's
            ax.plot(grid, vqeg_logistic(grid, *fit_logistic(x[ok], y[ok])[0]), color="tab:red")
        elif judged["d"] == 2:  # its fallback where the logistic does not converge
            ax.plot(grid, np.polyval(np.polyfit(x[ok], y[ok], 1), grid), color="tab:red", ls="--")
        arrow = "\u2193 lower is better" if m in lower_better else "\u2191 higher is better"
        ax.set_title(
            f"{label(m)} ({arrow})\nSROCC {judged['srocc']:.2f}, PLCC {judged['plcc']:.2f}, "
            f"n = {int(ok.sum())}",
            fontsize=8,
        )
        ax.set_xlabel(label(m), fontsize=8)
        ax.set_ylabel("MOS", fontsize=8)
        ax.tick_params(labelsize=7)
    _margins(fig, 0.5, 0.15, 0.45, 0.45, wspace=0.35, hspace=0.75)
    path = Path(path)
    fig.savefig(path, dpi=150, metadata={"Date": None} if path.suffix == ".svg" else None)
    return path
