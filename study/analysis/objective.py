"""Objective metrics (PSNR, SSIM) against subjective scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .mapping import fit_logistic, vqeg_logistic
from .ranks import RankNull, rank_correlations
from .schema import STIMULUS, VotesError
from .sureal_io import REFERENCE_METHODS

OBJECTIVE_COLUMNS = ("dataset", "image", "method", "psnr", "ssim")


def validate_objective(objective: pd.DataFrame) -> pd.DataFrame:
    """Check an objective-metrics table: ``dataset, image, method, psnr, ssim`` per stimulus.

    ``psnr`` may be ``inf`` (the HR reference against itself); other non-numeric values are an
    error. Raises :class:`study.analysis.VotesError` naming the problem.
    """
    if not isinstance(objective, pd.DataFrame):
        raise VotesError(f"objective must be a DataFrame, got {type(objective).__name__}")
    missing = [c for c in OBJECTIVE_COLUMNS if c not in objective.columns]
    if missing:
        raise VotesError(
            f"objective metrics lack column(s) {', '.join(missing)}; expected "
            f"{', '.join(OBJECTIVE_COLUMNS)}"
        )
    out = objective.copy()
    for c in ("dataset", "image", "method"):
        out[c] = out[c].astype(str)
    for c in ("psnr", "ssim"):
        raw = out[c]
        num = pd.to_numeric(raw, errors="coerce")
        bad = out.index[num.isna() & raw.notna()]
        if len(bad):
            raise VotesError(
                f"objective column {c!r} is not numeric in rows {', '.join(map(str, bad[:5]))}"
            )
        out[c] = num.astype(float)
    dup = out.duplicated(list(STIMULUS))
    if dup.any():
        raise VotesError(
            f"objective metrics repeat a stimulus in rows {', '.join(map(str, out.index[dup][:5]))}"
        )
    return out.reset_index(drop=True)


def _fisher_ci(r: float, n: int, var_factor: float = 1.0) -> tuple[float, float]:
    if not np.isfinite(r) or n <= 3:
        return np.nan, np.nan
    z = np.arctanh(np.clip(r, -0.999999999, 0.999999999))
    se = np.sqrt(var_factor / (n - 3))
    return float(np.tanh(z - 1.959964 * se)), float(np.tanh(z + 1.959964 * se))


def correlate(x: np.ndarray, y: np.ndarray, null: RankNull | None = None) -> dict:
    """SROCC, KROCC (with p-values), PLCC (raw and after the VQEG logistic) and RMSE, with 95% CIs.

    CIs use Fisher's z: :math:`\\tanh(z \\pm 1.96\\,\\mathrm{se})` with se
    :math:`= 1/\\sqrt{n-3}` for Pearson, :math:`\\sqrt{1.06/(n-3)}` for Spearman (Fieller, Hartley &
    Pearson 1957) and :math:`\\sqrt{0.437/(n-4)}` for Kendall's tau-b (same source). The PLCC CI
    after the logistic ignores that the fit used the data (it is optimistic). p-values come from
    ``null`` (a :class:`RankNull` of ``y``, built here when not given): exact or random
    permutations over few points, ``p_method`` says which.
    """
    n = len(x)
    names = ("srocc", "srocc_ci95_low", "srocc_ci95_high", "srocc_p", "krocc", "krocc_ci95_low",
             "krocc_ci95_high", "krocc_p", "plcc_raw", "plcc", "plcc_ci95_low", "plcc_ci95_high",
             "rmse")  # fmt: skip
    out = {"n": n} | dict.fromkeys(names, np.nan) | {"p_method": "", "note": ""}
    if n < 3 or is_constant(x) or is_constant(y):
        out["note"] = "fewer than 3 points or constant values: correlations undefined"
        return out
    null = null or RankNull(y)
    (out["srocc"], out["srocc_p"]), (out["krocc"], out["krocc_p"]) = rank_correlations(x, y, null)
    out["srocc_ci95_low"], out["srocc_ci95_high"] = _fisher_ci(out["srocc"], n, 1.06)
    if n > 4:
        out["krocc_ci95_low"], out["krocc_ci95_high"] = _fisher_ci(out["krocc"], n - 1, 0.437)
    out["p_method"] = null.method
    out["plcc_raw"] = float(stats.pearsonr(x, y).statistic)
    p, note = fit_logistic(x, y)
    if p is not None:
        pred = vqeg_logistic(x, *p)
        if np.ptp(pred) > 0:
            out["plcc"] = float(stats.pearsonr(pred, y).statistic)
            out["plcc_ci95_low"], out["plcc_ci95_high"] = _fisher_ci(out["plcc"], n)
            out["rmse"] = float(np.sqrt(np.mean((pred - y) ** 2)))
        else:
            note = "logistic fit is flat: PLCC undefined"
    out["note"] = note
    return out


def is_constant(v: np.ndarray) -> bool:
    """Equal values, or equal but for rounding (a mean of equal values over different images),
    where a correlation would only measure the rounding."""
    return bool(np.ptp(v) <= 1e-12 * max(1.0, float(np.max(np.abs(v)))))


def is_reference(table: pd.DataFrame) -> np.ndarray:
    """Rows of the HR reference: a method named hr, original, reference or gt (any case), or a
    PSNR of +inf (a candidate identical to its HR image).

    Full-reference metrics score the reference perfectly by construction (SSIM 1, GMSD 0, PSNR
    infinite), whatever people think of it, so judging a metric on it says nothing."""
    ref = table["method"].astype(str).str.lower().isin(REFERENCE_METHODS).to_numpy(copy=True)
    if "psnr" in table:
        ref |= np.isposinf(pd.to_numeric(table["psnr"], errors="coerce").to_numpy(float))
    return ref


def mark_excluded(merged: pd.DataFrame, metrics) -> pd.DataFrame:
    """``merged`` (a row per stimulus, ``mos`` and the metric columns) with two boolean columns:
    ``_reference`` (:func:`is_reference`) and ``_missing`` (another row without a MOS or a
    finite value of one of ``metrics``).

    Every metric is judged on the rows that are neither, one set of stimuli for all, so that
    their statistics, rankings and comparisons are about the same images."""
    out = merged.assign(_reference=is_reference(merged))
    values = out[["mos", *metrics]].to_numpy(float)
    out["_missing"] = ~out["_reference"] & ~np.isfinite(values).all(axis=1)
    return out


def excluded_counts(scope: pd.DataFrame, keys=None) -> dict:
    """``n_reference`` and ``n_missing`` points of a :func:`mark_excluded` scope: stimuli, or
    with ``keys`` conditions (the reference's; those with no stimulus left to judge)."""
    if keys is None:
        return {
            "n_reference": int(scope["_reference"].sum()),
            "n_missing": int(scope["_missing"].sum()),
        }
    kept = ~scope["_reference"] & ~scope["_missing"]
    g = scope.assign(_kept=kept).groupby(keys, observed=True)
    reference, any_kept = g["_reference"].any(), g["_kept"].any()
    return {"n_reference": int(reference.sum()), "n_missing": int((~reference & ~any_kept).sum())}


_CORRELATION = [
    "dataset", "level", "metric", "n", "n_excluded", "n_reference", "n_missing",
    "srocc", "srocc_ci95_low", "srocc_ci95_high", "srocc_p",
    "krocc", "krocc_ci95_low", "krocc_ci95_high", "krocc_p",
    "plcc_raw", "plcc", "plcc_ci95_low", "plcc_ci95_high", "rmse", "p_method", "note",
]  # fmt: skip


def objective_correlation(mos_stimulus: pd.DataFrame, objective: pd.DataFrame) -> pd.DataFrame:
    """Correlation of MOS with PSNR and SSIM, per stimulus and per method, per dataset and pooled.

    Both metrics are judged on the same points (:func:`mark_excluded`): the HR reference is left
    out of both (its PSNR is infinite, its SSIM 1 by construction), and so is a stimulus that
    lacks either metric.

    Parameters
    ----------
    mos_stimulus : pandas.DataFrame
        :func:`study.analysis.mos_per_stimulus` output (``dataset, image, method, mos``).
    objective : pandas.DataFrame
        ``dataset, image, method, psnr, ssim``.

    Returns
    -------
    pandas.DataFrame
        ``dataset`` ("all" pooled), ``level`` ("stimulus": each image x method is a point;
        "method": the MOS of a method against its mean metric over the images judged),
        ``metric`` (psnr, ssim), ``n``, ``n_excluded`` = ``n_reference`` (the HR reference's
        points) + ``n_missing`` (points without both metrics and a MOS), then the
        :func:`correlate` columns ``srocc, srocc_ci95_low, srocc_ci95_high, srocc_p, krocc,
        krocc_ci95_low, krocc_ci95_high, krocc_p, plcc_raw, plcc, plcc_ci95_low,
        plcc_ci95_high, rmse, p_method, note``.

    References
    ----------
    H. R. Sheikh, M. F. Sabir, A. C. Bovik (2006), "A statistical evaluation of recent full
    reference image quality assessment algorithms", IEEE TIP 15(11) (the 5-parameter logistic,
    after VQEG's FR-TV phase I/II reports); ITU-T P.1401 (2020).
    """
    obj = validate_objective(objective)
    m = mos_stimulus[[*STIMULUS, "mos"]].merge(obj, on=list(STIMULUS), how="inner")
    m = mark_excluded(m, ["psnr", "ssim"])
    rows = []
    scopes = [("all", m)] if m["dataset"].nunique() > 1 else []
    for ds, scope in scopes + list(m.groupby("dataset", sort=True)):
        judged = scope[~scope["_reference"] & ~scope["_missing"]]
        for level in ("stimulus", "method"):
            points, keys = judged, None
            if level == "method":
                keys = ["dataset", "method"]
                points = judged.groupby(keys, observed=True)[["mos", "psnr", "ssim"]].mean()
            y = points["mos"].to_numpy(dtype=float)
            counts = excluded_counts(scope, keys)
            null = RankNull(y)  # the same points for both metrics, so the same null
            for metric in ("psnr", "ssim"):
                row = {"dataset": ds, "level": level, "metric": metric}
                row |= {"n_excluded": sum(counts.values())} | counts
                rows.append(row | correlate(points[metric].to_numpy(dtype=float), y, null))
    return pd.DataFrame(rows, columns=_CORRELATION)


def method_ranking(mos: pd.DataFrame, objective: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rank methods within each dataset by MOS, and by mean PSNR and SSIM when given.

    Returns
    -------
    pandas.DataFrame
        ``dataset, method, mos, mos_rank`` (1 = best), ``psnr, psnr_rank, ssim, ssim_rank``
        (NaN without objective metrics; infinite PSNR ranks first), ``rank_shift``
        (psnr_rank - mos_rank: positive when people rank a method higher than PSNR does).
    """
    out = mos[["dataset", "method", "mos"]].copy()
    if objective is not None:
        obj = validate_objective(objective)
        om = (
            obj.groupby(["dataset", "method"], observed=True)[["psnr", "ssim"]].mean().reset_index()
        )
        out = out.merge(om, on=["dataset", "method"], how="left")
    else:
        out["psnr"] = out["ssim"] = np.nan
    g = out.groupby("dataset")
    out["mos_rank"] = g["mos"].rank(ascending=False, method="min")
    out["psnr_rank"] = g["psnr"].rank(ascending=False, method="min")
    out["ssim_rank"] = g["ssim"].rank(ascending=False, method="min")
    out["rank_shift"] = out["psnr_rank"] - out["mos_rank"]
    return (
        out[
            [
                "dataset",
                "method",
                "mos",
                "mos_rank",
                "psnr",
                "psnr_rank",
                "ssim",
                "ssim_rank",
                "rank_shift",
            ]
        ]
        .sort_values(["dataset", "mos_rank"])
        .reset_index(drop=True)
    )
