"""Objective metrics (PSNR, SSIM) against subjective scores."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .schema import STIMULUS, VotesError

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


def vqeg_logistic(x, b1, b2, b3, b4, b5):
    """VQEG 5-parameter logistic: :math:`b_1(1/2 - 1/(1 + e^{b_2 (x - b_3)})) + b_4 x + b_5`."""
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(np.clip(b2 * (x - b3), -500, 500)))) + b4 * x + b5


def _logistic_jacobian(x, b1, b2, b3, b4, b5):
    """Partial derivatives of :func:`vqeg_logistic` in its five parameters, one column each.

    Given to the optimiser, they replace its finite differences (six evaluations per step):
    the fits of a paper-size report take a fifth of the time and converge to the same optimum.
    """
    s = 1.0 / (1.0 + np.exp(np.clip(b2 * (x - b3), -500, 500)))
    ds = b1 * s * (1.0 - s)
    return np.column_stack([0.5 - s, ds * (x - b3), -ds * b2, x, np.ones_like(x)])


# How a note of correlation.csv begins when the logistic could not be fitted to the points.
FIT_FAILED = "logistic fit failed, so PLCC and RMSE are left empty"


# Levenberg-Marquardt stops here and keeps its best iterate: on near-linear data the logistic's
# parameters trade off along a flat valley (b1 against b4 as b2 -> 0) where a convergence test
# is never met, although the fit there is as good as it gets (never worse than a straight line).
_MAX_EVALUATIONS = 200


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Least-squares fit of :func:`vqeg_logistic`; returns (parameters or None, note)."""
    if len(x) < 6:
        return None, "fewer than 6 points: 5-parameter logistic not fitted"
    sx = np.std(x)
    if sx == 0 or np.std(y) == 0:
        return None, "constant values: logistic not fitted"
    # Fitted on standardised x, where the five parameters have comparable scales, with the
    # analytic Jacobian: a few dozen evaluations where raw x took hundreds (docs/benchmarks.md).
    mx = np.mean(x)
    xs = (x - mx) / sx
    p0 = [np.ptp(y), 1.0, 0.0, 0.0, np.mean(y)]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            q = optimize.least_squares(
                lambda b: vqeg_logistic(xs, *b) - y,
                p0,
                jac=lambda b: _logistic_jacobian(xs, *b),
                method="lm",
                max_nfev=_MAX_EVALUATIONS,
            ).x
    except (ValueError, np.linalg.LinAlgError) as exc:
        # A sentence first; the optimiser's own words stay after it for whoever debugs the fit.
        return None, f"{FIT_FAILED}: the optimiser stopped on an error ({exc})"
    # Back to raw x: b2 (xs - b3) = (b2 / sx)(x - mx - sx b3) and b4 xs + b5 = (b4 / sx) x + ...
    p = np.array([q[0], q[1] / sx, mx + sx * q[2], q[3] / sx, q[4] - q[3] * mx / sx])
    if not np.all(np.isfinite(p)):
        return None, f"{FIT_FAILED}: its parameters came out infinite or NaN"
    return p, ""


def _fisher_ci(r: float, n: int, var_factor: float = 1.0) -> tuple[float, float]:
    if not np.isfinite(r) or n <= 3:
        return np.nan, np.nan
    z = np.arctanh(np.clip(r, -0.999999999, 0.999999999))
    se = np.sqrt(var_factor / (n - 3))
    return float(np.tanh(z - 1.959964 * se)), float(np.tanh(z + 1.959964 * se))


def correlate(x: np.ndarray, y: np.ndarray) -> dict:
    """SROCC, KROCC, PLCC (raw and after the VQEG logistic) and RMSE, with 95% CIs.

    CIs use Fisher's z: :math:`\\tanh(z \\pm 1.96\\,\\mathrm{se})` with se
    :math:`= 1/\\sqrt{n-3}` for Pearson, :math:`\\sqrt{1.06/(n-3)}` for Spearman (Fieller, Hartley &
    Pearson 1957) and :math:`\\sqrt{0.437/(n-4)}` for Kendall's tau-b (same source). The PLCC CI
    after the logistic ignores that the fit used the data (it is optimistic).
    """
    n = len(x)
    out = {
        "n": n,
        "srocc": np.nan,
        "srocc_ci95_low": np.nan,
        "srocc_ci95_high": np.nan,
        "krocc": np.nan,
        "krocc_ci95_low": np.nan,
        "krocc_ci95_high": np.nan,
        "plcc_raw": np.nan,
        "plcc": np.nan,
        "plcc_ci95_low": np.nan,
        "plcc_ci95_high": np.nan,
        "rmse": np.nan,
        "note": "",
    }
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        out["note"] = "fewer than 3 points or constant values: correlations undefined"
        return out
    out["srocc"] = float(stats.spearmanr(x, y).statistic)
    out["srocc_ci95_low"], out["srocc_ci95_high"] = _fisher_ci(out["srocc"], n, 1.06)
    out["krocc"] = float(stats.kendalltau(x, y).statistic)
    if n > 4:
        z = np.arctanh(np.clip(out["krocc"], -0.999999999, 0.999999999))
        se = np.sqrt(0.437 / (n - 4))
        out["krocc_ci95_low"], out["krocc_ci95_high"] = (
            np.tanh(z - 1.959964 * se),
            np.tanh(z + 1.959964 * se),
        )
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


def objective_correlation(mos_stimulus: pd.DataFrame, objective: pd.DataFrame) -> pd.DataFrame:
    """Correlation of MOS with PSNR and SSIM, per stimulus and per method, per dataset and pooled.

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
        "method": the MOS of a method against its mean metric over the dataset's images),
        ``metric`` (psnr, ssim), ``n, n_excluded`` (points without a finite metric: the HR
        reference's infinite PSNR), then the :func:`correlate` columns ``srocc, srocc_ci95_low,
        srocc_ci95_high, krocc, krocc_ci95_low, krocc_ci95_high, plcc_raw, plcc, plcc_ci95_low,
        plcc_ci95_high, rmse, note``.

    References
    ----------
    H. R. Sheikh, M. F. Sabir, A. C. Bovik (2006), "A statistical evaluation of recent full
    reference image quality assessment algorithms", IEEE TIP 15(11) (the 5-parameter logistic,
    after VQEG's FR-TV phase I/II reports); ITU-T P.1401 (2020).
    """
    obj = validate_objective(objective)
    m = mos_stimulus[[*STIMULUS, "mos"]].merge(obj, on=list(STIMULUS), how="inner")
    rows = []
    scopes = [("all", m)] if m["dataset"].nunique() > 1 else []
    scopes += list(m.groupby("dataset", sort=True))
    for ds, g in scopes:
        for level in ("stimulus", "method"):
            if level == "method":
                keys = ["dataset", "method"] if ds == "all" else ["method"]
                g2 = (
                    g.replace([np.inf, -np.inf], np.nan)
                    .groupby(keys, observed=True)
                    .agg(mos=("mos", "mean"), psnr=("psnr", "mean"), ssim=("ssim", "mean"))
                )
            else:
                g2 = g
            for metric in ("psnr", "ssim"):
                x = g2[metric].to_numpy(dtype=float)
                y = g2["mos"].to_numpy(dtype=float)
                ok = np.isfinite(x) & np.isfinite(y)
                row = {
                    "dataset": ds,
                    "level": level,
                    "metric": metric,
                    "n_excluded": int((~ok).sum()),
                }
                row.update(correlate(x[ok], y[ok]))
                rows.append(row)
    cols = [
        "dataset",
        "level",
        "metric",
        "n",
        "n_excluded",
        "srocc",
        "srocc_ci95_low",
        "srocc_ci95_high",
        "krocc",
        "krocc_ci95_low",
        "krocc_ci95_high",
        "plcc_raw",
        "plcc",
        "plcc_ci95_low",
        "plcc_ci95_high",
        "rmse",
        "note",
    ]
    return pd.DataFrame(rows, columns=cols)


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
