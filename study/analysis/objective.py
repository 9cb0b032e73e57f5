"""Objective metrics (PSNR, SSIM) against subjective scores."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

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
# The notes of a monotonic mapping that is not the 5-parameter logistic (P.1401 asks for one).
NOT_MONOTONIC = "the 5-parameter logistic was not monotonic over the data"
LOGISTIC_4 = "4-parameter logistic (b4 = 0, d = 4)"
STRAIGHT_LINE = "straight line (d = 2)"


def _least_squares(
    xs: np.ndarray, y: np.ndarray, p0, free: list[int], max_nfev: int = _MAX_EVALUATIONS
) -> np.ndarray:
    """Levenberg-Marquardt on the parameters ``free`` of :func:`vqeg_logistic` (others at p0),
    with the analytic Jacobian; its best iterate, all five parameters."""
    start = np.array(p0, dtype=float)
    cols = slice(None) if len(free) == len(start) else free  # all five: no copy per step

    def full(b):
        if cols == slice(None):
            return b
        p = start.copy()
        p[free] = b
        return p

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        b = optimize.least_squares(
            lambda b: vqeg_logistic(xs, *full(b)) - y,
            start[cols],
            jac=lambda b: _logistic_jacobian(xs, *full(b))[:, cols],
            method="lm",
            max_nfev=max_nfev,
        ).x
    return full(b)


# From _logistic_start, the 4-parameter fit is within 1% of its optimum's squared error after
# 60 evaluations on data where the 5-parameter one bends (random, U-shaped, contrary trends:
# a third of the time of 200 from a generic start, which also stopped in worse local optima).
_MAX_EVALUATIONS_4 = 60
_START_SLOPES = np.array([0.5, 1.0, 2.0, 4.0, 8.0])  # b2 on standardised x


def _logistic_start(xs: np.ndarray, y: np.ndarray) -> list[float]:
    """A start for the 4-parameter logistic (b4 = 0): for each b2 of a small grid and b3 at
    quantiles of x, b1 and b5 are a linear least-squares fit; the best of the 25 (vectorised)."""
    b2, b3 = (
        g.ravel() for g in np.meshgrid(_START_SLOPES, np.quantile(xs, [0.1, 0.3, 0.5, 0.7, 0.9]))
    )
    s = 0.5 - 1.0 / (1.0 + np.exp(np.clip(b2[:, None] * (xs - b3[:, None]), -500, 500)))
    sc, yc = s - s.mean(axis=1, keepdims=True), y - y.mean()
    b1 = sc @ yc / np.maximum(_rowdot(sc, sc), 1e-300)
    k = int(np.argmin(_rowdot(yc - b1[:, None] * sc, yc - b1[:, None] * sc)))
    return [b1[k], b2[k], b3[k], 0.0, y.mean() - b1[k] * s[k].mean()]


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def is_monotonic(p, low: float, high: float) -> bool:
    """Whether :func:`vqeg_logistic` with parameters ``p`` is monotonic on [low, high].

    Its slope b1 b2 s(1 - s) + b4 (s the logistic) moves monotonically on either side of b3,
    where s(1 - s) peaks, so its extremes on the interval lie at the ends and at b3: the curve
    is monotonic when the slope has one sign at those three points (exact, no grid)."""
    b1, b2, b3, b4, _ = p
    at = np.array([low, high, np.clip(b3, low, high)])
    s = 1.0 / (1.0 + np.exp(np.clip(b2 * (at - b3), -500, 500)))
    slope = b1 * b2 * s * (1.0 - s) + b4
    return bool(np.all(slope >= 0) or np.all(slope <= 0))


def logistic_d(p) -> int:
    """The parameters a :func:`fit_logistic` mapping used (P.1401's d): 5, 4 (b4 = 0) or 2
    (b1 = 0, a straight line)."""
    return 2 if p[0] == 0 else 4 if p[3] == 0 else 5


def _candidates(xs: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Monotonic mappings on standardised x, each with its note: the 5-parameter logistic when
    it is monotonic over the data, else the 4-parameter one (b4 = 0: monotonic everywhere);
    and always the straight line, so that the mapping is never worse than a line."""
    slope, intercept = np.polyfit(xs, y, 1)
    out = [(np.array([0.0, 1.0, 0.0, slope, intercept]), "")]
    q = _least_squares(xs, y, [np.ptp(y), 1.0, 0.0, 0.0, np.mean(y)], [0, 1, 2, 3, 4])
    if is_monotonic(q, xs.min(), xs.max()):
        return [*out, (q, "")]
    out[0] = (out[0][0], f"{NOT_MONOTONIC}: mapped by a {STRAIGHT_LINE} instead")
    try:
        q4 = _least_squares(xs, y, _logistic_start(xs, y), [0, 1, 2, 4], _MAX_EVALUATIONS_4)
    except (ValueError, np.linalg.LinAlgError):
        return out
    return [*out, (q4, f"{NOT_MONOTONIC}: mapped by a {LOGISTIC_4} instead")]


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Least-squares monotonic mapping of x onto y by :func:`vqeg_logistic` (ITU-T P.1401).

    The VQEG 5-parameter logistic's linear term b4 x can bend it back within the data (a dip
    or a rise at one end), which P.1401 does not allow. Where the 5-parameter fit is monotonic
    over [min x, max x] it is kept; otherwise the fit with b4 = 0 (a 4-parameter logistic,
    monotonic everywhere) replaces it. A straight line (b1 = 0) is fitted too and maps instead
    whenever its squared error is smaller. :func:`logistic_d` gives the parameters used.

    Returns
    -------
    (numpy.ndarray or None, str)
        ``b1..b5`` of :func:`vqeg_logistic` (None when no logistic was fitted: fewer than 6
        points, constant values, or the optimiser failing) and a note ("" for the 5-parameter
        logistic, else which mapping replaced it and why).
    """
    if len(x) < 6:
        return None, "fewer than 6 points: 5-parameter logistic not fitted"
    sx = np.std(x)
    if sx == 0 or np.std(y) == 0:
        return None, "constant values: logistic not fitted"
    # Fitted on standardised x, where the five parameters have comparable scales, with the
    # analytic Jacobian: a few dozen evaluations where raw x took hundreds (docs/benchmarks.md).
    mx = np.mean(x)
    xs = (x - mx) / sx
    try:
        found = _candidates(xs, y)
    except (ValueError, np.linalg.LinAlgError) as exc:
        # A sentence first; the optimiser's own words stay after it for whoever debugs the fit.
        return None, f"{FIT_FAILED}: the optimiser stopped on an error ({exc})"
    with np.errstate(all="ignore"):
        sse = [np.sum((vqeg_logistic(xs, *q) - y) ** 2) for q, _ in found]
    # The line is first: a logistic must do strictly better to be chosen (ties: fewer parameters).
    q, note = found[int(np.nanargmin(np.where(np.isfinite(sse), sse, np.nan)))]
    if len(found) > 1 and q is found[0][0] and not note:
        note = f"the logistic fitted no better than a {STRAIGHT_LINE}, which maps instead"
    # Back to raw x: b2 (xs - b3) = (b2 / sx)(x - mx - sx b3) and b4 xs + b5 = (b4 / sx) x + ...
    p = np.array([q[0], q[1] / sx, mx + sx * q[2], q[3] / sx, q[4] - q[3] * mx / sx])
    if not np.all(np.isfinite(p)):
        return None, f"{FIT_FAILED}: its parameters came out infinite or NaN"
    return p, note


def _fisher_ci(r: float, n: int, var_factor: float = 1.0) -> tuple[float, float]:
    if not np.isfinite(r) or n <= 3:
        return np.nan, np.nan
    z = np.arctanh(np.clip(r, -0.999999999, 0.999999999))
    se = np.sqrt(var_factor / (n - 3))
    return float(np.tanh(z - 1.959964 * se)), float(np.tanh(z + 1.959964 * se))


# Rank correlations over few points (a dataset's methods: 5 to 12) get permutation p-values:
# every ordering of the MOS values up to EXACT_MAX_N points (9! = 362,880), PERMUTATIONS random
# orderings (seeded) up to PERMUTATION_MAX_N, and the asymptotic t (SROCC) and normal (KROCC)
# approximations only beyond, where they hold.
EXACT_MAX_N = 9
PERMUTATION_MAX_N = 50
PERMUTATIONS = 9_999


@functools.lru_cache(maxsize=2)
def _all_orderings(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every permutation of range(n), a row each (n! rows), built by inserting 0..n-1 in turn;
    and for each, the flat index (a n + b) of its pairs (a, b) = (order[i], order[j]), i < j."""
    perms = np.zeros((1, 0), dtype=np.int8)
    for k in range(n):
        m = len(perms)
        grown = np.empty((m * (k + 1), k + 1), dtype=np.int8)
        for pos in range(k + 1):
            block = grown[pos * m : (pos + 1) * m]
            block[:, :pos], block[:, pos], block[:, pos + 1 :] = perms[:, :pos], k, perms[:, pos:]
        perms = grown
    return perms, _pair_index(perms)


def _pair_index(orders: np.ndarray) -> np.ndarray:
    n = orders.shape[1]
    i, j = np.triu_indices(n, 1)
    return orders[:, i].astype(np.int16) * n + orders[:, j]


class RankNull:
    """The permutation distribution of SROCC and KROCC against fixed MOS values ``y``.

    Built once per set of points and shared by every metric judged on them, so that a
    metric's statistics under all orderings are a matrix product each. ``method`` names how
    the p-values are found: ``exact permutation (N! orderings)`` up to :data:`EXACT_MAX_N`
    points, ``permutation (9,999 random orderings, seeded)`` up to :data:`PERMUTATION_MAX_N`
    (p = (hits + 1) / (9,999 + 1)), else ``asymptotic`` (scipy's t and normal approximations).
    Ties stay as they are (average ranks; tau-b's pairs).
    """

    def __init__(self, y: np.ndarray, seed: int = 0):
        n = len(y)
        self.exact = n <= EXACT_MAX_N
        if not 3 <= n <= PERMUTATION_MAX_N:
            self.method = "asymptotic"
            return
        if self.exact:  # the same for every set of n points: built once
            orders, pairs = _all_orderings(n)
            self.method = f"exact permutation ({math.factorial(n):,} orderings)"
        else:
            base = np.tile(np.arange(n, dtype=np.int8), (PERMUTATIONS, 1))
            orders = np.random.default_rng(seed).permuted(base, axis=1)
            pairs = _pair_index(orders)
            self.method = f"permutation ({PERMUTATIONS:,} random orderings, seeded)"
        ranks = stats.rankdata(y)
        self._ranks = ranks - ranks.mean()
        self._i, self._j = np.triu_indices(n, 1)
        self._signs = np.sign(y[self._i] - y[self._j])
        # Each ordering's centred MOS ranks, and the signs of its MOS pairs (float32, exact for
        # -1, 0, 1 and their sums here, for BLAS: 9! x 36 take 52 MB, briefly).
        self._null_ranks = self._ranks[orders]
        self._null_signs = np.sign(y[:, None] - y[None, :]).astype(np.float32).ravel()[pairs]

    def _p(self, observed: float, null: np.ndarray) -> float:
        hits = np.count_nonzero(np.abs(null) >= abs(observed) - 1e-9 * max(1.0, abs(observed)))
        return hits / len(null) if self.exact else (hits + 1) / (len(null) + 1)

    def p_values(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Two-sided p of SROCC and of KROCC of ``x`` against the ``y`` the null was built on."""
        return tuple(p for _, p in rank_correlations(x, y, self))

    def _permutation_p(self, x: np.ndarray) -> tuple[float, float]:
        rx = stats.rankdata(x)
        rx -= rx.mean()
        sx = np.sign(x[self._i] - x[self._j])
        # Pearson of ranks and tau-b keep their denominators under any ordering of y (the ties
        # travel with the values), so their numerators order the orderings alike.
        spearman = self._p(rx @ self._ranks, self._null_ranks @ rx)
        kendall = self._p(sx @ self._signs, self._null_signs @ sx.astype(np.float32))
        return spearman, kendall


def rank_correlations(x: np.ndarray, y: np.ndarray, null: RankNull) -> tuple[tuple, tuple]:
    """(SROCC, p) and (KROCC tau-b, p) of x against y, p as ``null.method`` says."""
    spearman, kendall = stats.spearmanr(x, y), stats.kendalltau(x, y)
    if null.method == "asymptotic":
        p = float(spearman.pvalue), float(kendall.pvalue)
    else:
        p = null._permutation_p(x)
    return (float(spearman.statistic), p[0]), (float(kendall.statistic), p[1])


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
