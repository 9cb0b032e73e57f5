"""Which methods differ.

The primary test (:func:`crossed_tests`, ``significance.csv``) treats raters and images as
crossed random samples, so its verdicts generalise to other raters and other images; the SRGAN
paper's Wilcoxon signed-rank test over rater x image pairs (:func:`.paper_tests.pairwise_tests`,
``significance_paper.csv``) takes both as fixed and is kept for comparison with the paper.
Friedman and Mann-Whitney U live beside the latter (paper_tests.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .adjust import holm
from .crossed import GENERALISES, cells, crossed_mean, t_test
from .order import order_methods
from .schema import ratings

CROSSED_TEST = "crossed t (raters and images random)"
CROSSED_COLUMNS = [
    "dataset",
    "method_a",
    "method_b",
    "test",
    "generalises_over",
    "n_raters",
    "n_images",
    "n_cells",
    "mos_a",
    "mos_b",
    "mean_diff",
    "se",
    "ci95_low",
    "ci95_high",
    "df",
    "statistic",
    "p",
    "p_holm",
    "p_bh",
    "significant_holm",
    "sd_rater",
    "sd_image",
    "sd_resid",
    "note",
    "verdict",
]


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values; NaN entries stay NaN and are not counted."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def crossed_tests(
    votes: pd.DataFrame,
    family: str = "dataset",
    method_order: Sequence[str] | None = None,
    no_verdict: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Every pair of methods within each dataset, tested over raters *and* images.

    For the pair (a, b) each rater x image cell both were rated in gives a difference
    :math:`d_{ri}` (a rater's repeated votes averaged first), modelled as
    :math:`d_{ri} = \\delta + u_r + v_i + e_{ri}`: :math:`u_r` the rater x method and
    :math:`v_i` the image x method interaction, both random. The variance components come
    from moments (:func:`study.analysis.crossed.crossed_mean`, any missing cells), the
    standard error of the mean difference from them, and a two-sided t test with
    Satterthwaite df; Holm (and Benjamini-Hochberg) adjust within the family. On null designs
    with interactions its false-positive rate stays near 5% where the rater x image Wilcoxon's
    reaches ~50% (``tests/test_analysis_calibration.py``, ``bench/bench_calibration.py``).

    Parameters
    ----------
    votes : pandas.DataFrame
        Long vote table; ``kind == "rating"`` votes.
    family : {"dataset", "all"}
        Holm and BH adjust over each dataset's pairs (default) or over all.
    method_order : sequence of str, optional
        As :func:`pairwise_tests`.
    no_verdict : dict of str to str, optional
        Method -> reason: pairs involving it get no p-value, no verdict and the reason in
        ``note`` (e.g. a simulated method without a known profile).

    Returns
    -------
    pandas.DataFrame
        ``dataset, method_a, method_b, test, generalises_over`` ("raters and images"),
        ``n_raters, n_images, n_cells`` (rater x image cells with both methods), ``mos_a, mos_b``
        (means over those cells), ``mean_diff`` (a - b), ``se, ci95_low, ci95_high, df``
        (Satterthwaite), ``statistic`` (t), ``p, p_holm, p_bh, significant_holm``
        (p_holm < 0.05), ``sd_rater, sd_image, sd_resid`` (square roots of the variance
        components of the difference: rater x method, image x method, residual), ``note``
        (why p is NaN), ``verdict`` (:func:`verdicts`).

    References
    ----------
    Judd, Westfall & Kenny (2012); Baayen, Davidson & Bates (2008); Gao & Owen (2017);
    Satterthwaite (1946); Holm (1979).
    """
    if family not in ("dataset", "all"):
        raise ValueError(f"family must be 'dataset' or 'all', got {family!r}")
    r = ratings(votes)
    frames = [
        _crossed_dataset(ds, g, order_methods(g["method"].unique(), method_order))
        for ds, g in r.groupby("dataset", sort=True, observed=True)
    ]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CROSSED_COLUMNS)
    for method, reason in (no_verdict or {}).items():
        hit = (out["method_a"] == method) | (out["method_b"] == method)
        out.loc[hit, ["statistic", "p"]] = np.nan
        out.loc[hit, "note"] = reason
    by = None if family == "all" else out["dataset"]
    out["p_holm"] = _adjust(out, holm, by)
    out["p_bh"] = _adjust(out, bh, by)
    out["significant_holm"] = out["p_holm"] < 0.05
    out["verdict"] = verdicts(out)
    return out[CROSSED_COLUMNS]


def _adjust(out: pd.DataFrame, how, by: pd.Series | None) -> np.ndarray:
    """``how`` (holm, bh) of ``out["p"]`` over all rows or within each group of ``by``."""
    if out.empty:
        return np.array([], dtype=float)
    if by is None:
        return how(out["p"].to_numpy(dtype=float))
    return out.groupby(by)["p"].transform(lambda p: how(p.to_numpy(dtype=float))).to_numpy()


def _crossed_dataset(ds: str, g: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """:func:`crossed_tests`' rows for one dataset (all pairs in one vectorised call)."""
    x, _ = cells(g, methods)
    a, b = np.triu_indices(len(methods), 1)  # the order of itertools.combinations
    xa, xb = np.moveaxis(x[:, :, a], -1, 0), np.moveaxis(x[:, :, b], -1, 0)
    d = xa - xb  # (pairs, raters, images), NaN unless both were rated
    est = crossed_mean(d)
    test = t_test(est)
    paired = ~np.isnan(d)
    with np.errstate(invalid="ignore"):
        mos_a = np.where(paired, xa, 0).sum(axis=(1, 2)) / est.n_cells
        mos_b = np.where(paired, xb, 0).sum(axis=(1, 2)) / est.n_cells
    return pd.DataFrame(
        {
            "dataset": str(ds),
            "method_a": [methods[k] for k in a],
            "method_b": [methods[k] for k in b],
            "test": CROSSED_TEST,
            "generalises_over": GENERALISES,
            "n_raters": est.n_raters,
            "n_images": est.n_images,
            "n_cells": est.n_cells,
            "mos_a": mos_a,
            "mos_b": mos_b,
            "mean_diff": est.mean,
            "se": est.se,
            "ci95_low": test["ci_low"],
            "ci95_high": test["ci_high"],
            "df": est.df,
            "statistic": test["statistic"],
            "p": test["p"],
            "sd_rater": np.sqrt(est.var_rater),
            "sd_image": np.sqrt(est.var_image),
            "sd_resid": np.sqrt(est.var_resid),
            "note": [_crossed_note(est, k, d[k]) for k in range(len(a))],
        }
    )


def _crossed_note(est, k: int, d: np.ndarray) -> str:
    """Why pair ``k``'s crossed test is undefined ("" when it is defined)."""
    if est.defined[k]:
        return ""
    if est.n_cells[k] == 0:
        return "no pairs: no rater rated both methods on an image"
    if est.n_raters[k] < 2 or est.n_images[k] < 2:
        return (
            "needs 2 raters and 2 images with both methods to generalise over raters and "
            "images (significance_paper.csv takes them as fixed)"
        )
    if np.nanmax(d) == np.nanmin(d):
        return "all paired differences are equal: test undefined"
    return "the design cannot separate rater from image variation: test undefined"


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdicts(sig: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """One sentence per pair of :func:`crossed_tests` (or :func:`pairwise_tests`) output.

    "BSD100: srgan is rated higher than srresnet (MOS 3.56 vs 2.29, difference 1.27, 95% CI
    1.05 to 1.49, over raters and images; p < 0.001, Holm)." when ``p_holm < alpha``, "BSD100: no
    significant difference between a and b (...)" otherwise, and "BSD100: no verdict on a vs b
    (reason)." when the test is undefined. Either way the method with the higher mean comes
    first and the difference (and its CI) is higher minus lower.
    A table without ``ci95_low`` (the paper's Wilcoxon) gives no CI, and without
    ``generalises_over`` says that raters and images are taken as fixed.
    """
    out = []
    for row in sig.itertuples(index=False):
        d = row._asdict()
        ds, a, b = d["dataset"], d["method_a"], d["method_b"]
        if not np.isfinite(d["p_holm"]):
            out.append(f"{ds}: no verdict on {a} vs {b} ({d['note'] or 'test undefined'}).")
            continue
        flip = d["mean_diff"] < 0
        hi, lo = (b, a) if flip else (a, b)
        m_hi, m_lo = (d["mos_b"], d["mos_a"]) if flip else (d["mos_a"], d["mos_b"])
        parts = [f"MOS {m_hi:.2f} vs {m_lo:.2f}", f"difference {abs(d['mean_diff']):.2f}"]
        if np.isfinite(d.get("ci95_low", np.nan)):
            ci = sorted(-x if flip else x for x in (d["ci95_low"], d["ci95_high"]))
            parts.append(f"95% CI {ci[0]:.2f} to {ci[1]:.2f}")
        parts.append(
            f"over {d['generalises_over']}"
            if "generalises_over" in d
            else "raters and images taken as fixed"
        )
        detail = f"({', '.join(parts)}; {_p_text(d['p_holm'])}, Holm)"
        if d["p_holm"] < alpha:
            out.append(f"{ds}: {hi} is rated higher than {lo} {detail}.")
        else:
            out.append(f"{ds}: no significant difference between {hi} and {lo} {detail}.")
    return out
