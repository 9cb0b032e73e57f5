"""Figures of the report, drawn on matplotlib's Agg canvas (no pyplot, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .order import order_methods
from .simulate import METHOD_ALIASES, PAPER_MOS, _norm

_PAPER_ORDER = list(PAPER_MOS["set5"])
# PNG to look at, SVG to edit into a paper; a report page needs only the PNG.
FORMATS = ("png", "svg")
# Put before every figure title when the votes are (partly) simulated, so a figure copied out of
# the report cannot pass for a study of people.
SIMULATED_PREFIX = "SIMULATED - "


def _figure(nrows: int, ncols: int, figsize: tuple[float, float]):
    """A figure on the Agg canvas, without pyplot (no global state, no GUI, 0.5 s less import)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    # A fixed title height: matplotlib otherwise measures every axis' tick labels at each draw to
    # lift the title above top tick labels, which these figures do not have (same picture,
    # a quarter less drawing time).
    with matplotlib.rc_context({"axes.titley": 1.0}):
        axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def warm_up() -> None:
    """Draw a small figure to nowhere, as SVG and PNG: loads matplotlib's canvases, fonts and
    text caches (a few tenths of a second, once per process), so that a process forked
    afterwards (the live report's figures, study.reports.live) starts with them."""
    import io

    import matplotlib

    fig, axes = _figure(1, 1, (2.0, 2.0))
    ax = axes[0, 0]
    ax.errorbar([0, 1], [0, 1], yerr=[0.1, 0.2], fmt="o-", label="a")
    ax.scatter([0.2, 0.8], [0.3, 0.6], rasterized=True)
    ax.set(title="warm", xlabel="x", ylabel="y")
    ax.legend()
    for ext in ("svg", "png"):
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            fig.savefig(io.BytesIO(), dpi=100, format=ext)


def method_order(methods) -> list[str]:
    """Methods in the paper's column order (NN ... SRGAN, HR); unknown ones after, sorted."""

    def key(m):
        n = METHOD_ALIASES.get(_norm(m), _norm(m))
        return (_PAPER_ORDER.index(n), m) if n in _PAPER_ORDER else (len(_PAPER_ORDER), m)

    return sorted(set(methods), key=key)


def ordered(methods, order=None) -> list[str]:
    """Methods in the caller's ``order`` (srmos passes the paper's); else :func:`method_order`."""
    return order_methods(methods, order) if order else method_order(methods)


def _margins(fig, left: float, right: float, bottom: float, top: float, **space) -> None:
    """Margins in inches, so tick labels, axis labels and legends fit at any figure size.

    Fixed margins rather than a tight bounding box: measuring every label's extent costs a
    third of the figures' time, and the report has a time budget.
    """
    w, h = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h, **space
    )


def _save(fig, out: Path, stem: str, formats=FORMATS) -> dict[str, Path]:
    import matplotlib

    files = {}
    for ext in formats:
        p = out / f"{stem}.{ext}"
        # Text stays text in the SVG: editable in a paper's figure, and much faster to write.
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            fig.savefig(p, dpi=100, metadata={"Date": None} if ext == "svg" else None, format=ext)
        files[p.name] = p
    return files


def score_distribution(
    votes: pd.DataFrame, out: Path, order=None, formats=FORMATS, prefix: str = ""
) -> dict[str, Path]:
    """Share of each score 1-5 per method and dataset, MOS printed on top (after SRGAN fig. 5).

    ``prefix`` goes before each title (:data:`SIMULATED_PREFIX` for simulated votes)."""
    from matplotlib import colormaps
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    r = votes[votes["kind"] == "rating"]
    datasets = sorted(r["dataset"].unique())
    methods = ordered(r["method"].unique(), order)
    counts = r.groupby(["dataset", "method", "score"], observed=True).size()
    means = r.groupby(["dataset", "method"], observed=True)["score"].mean()
    n = len(datasets)
    fig, axes = _figure(n, 1, (max(6, 0.8 * len(methods) + 2), 2.9 * n + 0.5))
    colors = colormaps["RdYlGn"](np.linspace(0.05, 0.95, 5))
    for ax, ds in zip(axes[:, 0], datasets, strict=True):
        ms = [m for m in methods if (ds, m) in means.index]
        c = counts.loc[ds].unstack(fill_value=0).reindex(index=ms)
        share = c.div(c.sum(axis=1), axis=0)
        bottom = np.zeros(len(ms))
        left = np.arange(len(ms)) - 0.4
        for k, col in zip(range(1, 6), colors, strict=True):
            h = share[float(k)].to_numpy() if float(k) in share.columns else np.zeros(len(ms))
            # A score's bars as one collection of rectangles (ax.bar's, 0.8 wide): a paper-size
            # figure's 800 bars drawn as 15 collections take a third of the time.
            corners = np.stack([left, left + 0.8, left + 0.8, left], axis=1)
            heights = np.stack([bottom, bottom, bottom + h, bottom + h], axis=1)
            bars = PolyCollection(
                np.stack([corners, heights], axis=2), facecolors=[col], linewidths=0
            )
            ax.add_collection(bars, autolim=False)
            bottom += h
        for i, m in enumerate(ms):
            ax.text(i, 1.02, f"{means[(ds, m)]:.2f}", ha="center", va="bottom", fontsize=7)
        pad = 0.05 * (len(ms) - 0.2)  # ax.bar's margins: 5% of the bars' span each side
        ax.set_xlim(-0.4 - pad, len(ms) - 0.6 + pad)
        ax.set_ylim(0, 1.15)
        ax.set_xticks(range(len(ms)), ms, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("share of votes")
        ax.set_title(
            f"{prefix}{ds}: scores per method, MOS on top (n={int(c.to_numpy().sum())})",
            fontsize=9,
        )
    handles = [Patch(facecolor=col) for col in colors]
    fig.legend(
        handles,
        [str(k) for k in range(1, 6)],
        title="score",
        ncol=5,
        fontsize=7,
        title_fontsize=7,
        loc="upper center",
        frameon=False,
    )
    # Inches: y label and ticks left; rotated method names below each panel; legend on top.
    _margins(fig, left=0.75, right=0.15, bottom=0.85, top=0.85, hspace=1.2 / 1.7)
    return _save(fig, out, "score_distribution", formats)


def _interval(g: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Error bars of ``g`` (mos.csv rows) and what they are: the interval over raters and images
    where ``mos.csv`` has it, else the ITU interval over votes (raters and images fixed)."""
    if "ci95_low_general" in g.columns and g["ci95_low_general"].notna().any():
        low, high, what = g["ci95_low_general"], g["ci95_high_general"], "over raters and images"
    else:
        low, high, what = g["ci95_low"], g["ci95_high"], "over votes, raters and images fixed"
    return np.nan_to_num(np.vstack([g["mos"] - low, high - g["mos"]])), what


def mos_ci(
    mos: pd.DataFrame, out: Path, order=None, formats=FORMATS, prefix: str = ""
) -> dict[str, Path]:
    """MOS per method and dataset with 95% CI bars: the interval that generalises over raters
    and images (``ci95_*_general``) when ``mos`` has it, else the ITU one; title and axis
    label say which. ``prefix`` goes before each title."""
    datasets = sorted(mos["dataset"].unique())
    fig, axes = _figure(1, len(datasets), (4.2 * len(datasets), 4.2))
    for ax, ds in zip(axes[0], datasets, strict=True):
        g = (
            mos[mos["dataset"] == ds]
            .set_index("method")
            .loc[ordered(mos.loc[mos["dataset"] == ds, "method"], order)]
        )
        err, what = _interval(g)
        ax.errorbar(range(len(g)), g["mos"], yerr=err, fmt="o", capsize=3)
        ax.set_xticks(range(len(g)), g.index, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(1, 5)
        # Two lines: which interval is shown must fit above a 4.2-inch panel.
        ax.set_title(f"{prefix}{ds}: MOS, 95% CI\n{what}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel(f"MOS (95% CI {what.split(',')[0]})")
    _margins(fig, left=0.6, right=0.15, bottom=1.1, top=0.55, wspace=0.2)
    return _save(fig, out, "mos_ci", formats)


def mos_vs_psnr(
    mos: pd.DataFrame, objective: pd.DataFrame, out: Path, formats=FORMATS, prefix: str = ""
) -> dict[str, Path]:
    """Per-method MOS against mean PSNR (finite values only), one panel per dataset; error bars
    as :func:`mos_ci`'s. ``prefix`` goes before each title."""
    obj = objective.replace([np.inf, -np.inf], np.nan)
    om = obj.groupby(["dataset", "method"], observed=True)["psnr"].mean().reset_index()
    m = mos.merge(om, on=["dataset", "method"], how="inner").dropna(subset=["psnr"])
    datasets = sorted(m["dataset"].unique())
    fig, axes = _figure(1, max(1, len(datasets)), (4.2 * max(1, len(datasets)), 3.8))
    for ax, ds in zip(axes[0], datasets, strict=False):
        g = m[m["dataset"] == ds]
        err, what = _interval(g)
        ax.errorbar(g["psnr"], g["mos"], yerr=err, fmt="o", capsize=2)
        for _, row in g.iterrows():
            ax.annotate(
                row["method"],
                (row["psnr"], row["mos"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlabel("PSNR (dB)")
        ax.set_title(f"{prefix}{ds}: MOS vs PSNR\n95% CI {what}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("MOS")
    # Room on the right for the name of the method with the highest PSNR, above for the title.
    _margins(fig, left=0.6, right=0.9, bottom=0.55, top=0.55, wspace=0.35)
    return _save(fig, out, "mos_vs_psnr", formats)


def jod_ci(jod: pd.DataFrame, out: Path, order=None, formats=FORMATS) -> dict[str, Path]:
    """JOD per method and dataset with 95% CI bars (a paired-comparison study)."""
    datasets = sorted(jod["dataset"].unique())
    fig, axes = _figure(1, len(datasets), (4.2 * len(datasets), 4.2))
    for ax, ds in zip(axes[0], datasets, strict=True):
        g = jod[jod["dataset"] == ds].set_index("method")
        g = g.loc[ordered(g.index, order)]
        err = np.vstack([g["jod"] - g["ci95_low"], g["ci95_high"] - g["jod"]])
        ax.errorbar(range(len(g)), g["jod"], yerr=np.nan_to_num(err), fmt="o", capsize=3)
        ax.set_xticks(range(len(g)), g.index, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{ds}: JOD (1 JOD = 75% preference), 95% CI", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("JOD")
    _margins(fig, left=0.6, right=0.15, bottom=1.1, top=0.35, wspace=0.2)
    return _save(fig, out, "jod_ci", formats)
