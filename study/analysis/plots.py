"""Figures of the report, drawn on matplotlib's Agg canvas (no pyplot, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .simulate import METHOD_ALIASES, PAPER_MOS, _norm

_PAPER_ORDER = list(PAPER_MOS["set5"])


def _figure(nrows: int, ncols: int, figsize: tuple[float, float]):
    """A figure on the Agg canvas, without pyplot (no global state, no GUI, 0.5 s less import)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def method_order(methods) -> list[str]:
    """Methods in the paper's column order (NN ... SRGAN, HR); unknown ones after, sorted."""

    def key(m):
        n = METHOD_ALIASES.get(_norm(m), _norm(m))
        return (_PAPER_ORDER.index(n), m) if n in _PAPER_ORDER else (len(_PAPER_ORDER), m)

    return sorted(set(methods), key=key)


def _save(fig, out: Path, stem: str) -> dict[str, Path]:
    import matplotlib
    from matplotlib.transforms import Bbox

    # One tight box for both files, so rotated tick labels, the y label and the legend stay in
    # the picture without laying the figure out once per format.
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    box = Bbox.from_extents(tight.x0 - 0.05, tight.y0 - 0.05, tight.x1 + 0.05, tight.y1 + 0.05)
    files = {}
    for ext in ("png", "svg"):
        p = out / f"{stem}.{ext}"
        # Text stays text in the SVG: editable in a paper's figure, and much faster to write.
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            fig.savefig(
                p,
                dpi=100,
                metadata={"Date": None} if ext == "svg" else None,
                format=ext,
                bbox_inches=box,
            )
        files[p.name] = p
    return files


def score_distribution(votes: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Share of each score 1-5 per method and dataset, MOS printed on top (after SRGAN fig. 5)."""
    from matplotlib import colormaps

    r = votes[votes["kind"] == "rating"]
    datasets = sorted(r["dataset"].unique())
    methods = method_order(r["method"].unique())
    counts = r.groupby(["dataset", "method", "score"], observed=True).size()
    means = r.groupby(["dataset", "method"], observed=True)["score"].mean()
    fig, axes = _figure(len(datasets), 1, (max(6, 0.8 * len(methods) + 2), 2.4 * len(datasets)))
    colors = colormaps["RdYlGn"](np.linspace(0.05, 0.95, 5))
    for ax, ds in zip(axes[:, 0], datasets, strict=True):
        ms = [m for m in methods if (ds, m) in means.index]
        c = counts.loc[ds].unstack(fill_value=0).reindex(index=ms)
        share = c.div(c.sum(axis=1), axis=0)
        bottom = np.zeros(len(ms))
        for k, col in zip(range(1, 6), colors, strict=True):
            h = share[float(k)].to_numpy() if float(k) in share.columns else np.zeros(len(ms))
            ax.bar(range(len(ms)), h, bottom=bottom, color=col, label=str(k), width=0.8)
            bottom += h
        for i, m in enumerate(ms):
            ax.text(i, 1.02, f"{means[(ds, m)]:.2f}", ha="center", va="bottom", fontsize=7)
        ax.set_ylim(0, 1.15)
        ax.set_xticks(range(len(ms)), ms, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("share of votes")
        ax.set_title(
            f"{ds}: scores per method, MOS on top (n={int(c.to_numpy().sum())})", fontsize=9
        )
    axes[0, 0].legend(
        title="score",
        ncol=5,
        fontsize=7,
        title_fontsize=7,
        loc="upper left",
        bbox_to_anchor=(0, 1.45),
        frameon=False,
    )
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.12, hspace=0.9)
    return _save(fig, out, "score_distribution")


def mos_ci(mos: pd.DataFrame, out: Path) -> dict[str, Path]:
    """MOS per method and dataset with 95% CI bars."""
    datasets = sorted(mos["dataset"].unique())
    fig, axes = _figure(1, len(datasets), (4.2 * len(datasets), 3.8))
    for ax, ds in zip(axes[0], datasets, strict=True):
        g = (
            mos[mos["dataset"] == ds]
            .set_index("method")
            .loc[method_order(mos.loc[mos["dataset"] == ds, "method"])]
        )
        err = np.vstack([g["mos"] - g["ci95_low"], g["ci95_high"] - g["mos"]])
        ax.errorbar(range(len(g)), g["mos"], yerr=np.nan_to_num(err), fmt="o", capsize=3)
        ax.set_xticks(range(len(g)), g.index, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(1, 5)
        ax.set_title(f"{ds}: MOS, 95% CI ({g['ci_method'].iloc[0]})", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("MOS")
    fig.subplots_adjust(left=0.06, right=0.98, top=0.9, bottom=0.25, wspace=0.25)
    return _save(fig, out, "mos_ci")


def mos_vs_psnr(mos: pd.DataFrame, objective: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Per-method MOS against mean PSNR (finite values only), one panel per dataset."""
    obj = objective.replace([np.inf, -np.inf], np.nan)
    om = obj.groupby(["dataset", "method"], observed=True)["psnr"].mean().reset_index()
    m = mos.merge(om, on=["dataset", "method"], how="inner").dropna(subset=["psnr"])
    datasets = sorted(m["dataset"].unique())
    fig, axes = _figure(1, max(1, len(datasets)), (4.2 * max(1, len(datasets)), 3.8))
    for ax, ds in zip(axes[0], datasets, strict=False):
        g = m[m["dataset"] == ds]
        ax.errorbar(
            g["psnr"],
            g["mos"],
            yerr=np.nan_to_num(np.vstack([g["mos"] - g["ci95_low"], g["ci95_high"] - g["mos"]])),
            fmt="o",
            capsize=2,
        )
        for _, row in g.iterrows():
            ax.annotate(
                row["method"],
                (row["psnr"], row["mos"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlabel("PSNR (dB)")
        ax.set_title(f"{ds}: MOS vs PSNR", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("MOS")
    fig.subplots_adjust(left=0.06, right=0.98, top=0.9, bottom=0.14, wspace=0.25)
    return _save(fig, out, "mos_vs_psnr")
