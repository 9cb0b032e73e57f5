"""Planning: the smallest MOS difference a study can detect."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .crossed import cells, crossed_mean
from .schema import ratings

# Asymptotic relative efficiency of the Wilcoxon signed-rank test to the t-test under normality.
ARE_WILCOXON = 3.0 / np.pi


def paired_t_power(delta: float, sd: float, n: float, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample (paired) t-test for a mean difference ``delta``.

    :math:`1 - F_{t'}(t_{1-\\alpha/2}) + F_{t'}(-t_{1-\\alpha/2})` with :math:`t'` noncentral t,
    df = n - 1, noncentrality :math:`\\delta\\sqrt n / \\sigma_d`.
    """
    df = n - 1
    nc = delta * np.sqrt(n) / sd
    tc = stats.t.ppf(1 - alpha / 2, df)
    pw = stats.nct.sf(tc, df, nc) + stats.nct.cdf(-tc, df, nc)
    if not np.isfinite(pw):
        # scipy's noncentral t gives NaN far in the tail, where power is 1 to double precision.
        pw = stats.norm.sf(tc - nc) + stats.norm.cdf(-tc - nc)
    return float(min(pw, 1.0))


def detectable_difference(sd: float, n: float, alpha: float = 0.05, power: float = 0.8) -> float:
    r"""Smallest mean difference detectable with the given power (solves :func:`paired_t_power`).

    The noncentrality is :math:`\delta\sqrt n/\sigma_d`, so the answer is :math:`\sigma_d` times
    the one for :math:`\sigma_d = 1`, solved once per (n, alpha, power).
    """
    if not (np.isfinite(sd) and sd > 0) or n < 2:
        return np.nan
    return float(sd * _unit_detectable_difference(float(n), float(alpha), float(power)))


@lru_cache(maxsize=1024)
def _unit_detectable_difference(n: float, alpha: float, power: float) -> float:
    f = lambda d: paired_t_power(d, 1.0, n, alpha) - power  # noqa: E731
    # Bracket around the normal approximation (z_{1-a/2} + z_power) / sqrt(n).
    guess = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / np.sqrt(n)
    lo, hi = 0.5 * guess, 2.0 * guess
    while f(lo) > 0:
        lo /= 2
    while f(hi) < 0:
        hi *= 2
    return optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-13)


def t_power(nc: float, df: float, alpha: float = 0.05) -> float:
    """Power of a two-sided t test with ``df`` degrees of freedom at noncentrality ``nc``
    (the true difference over its standard error).

    Each tail is taken where scipy's noncentral t is accurate: far in a tail its ``sf`` can
    return NaN (scipy 1.17 at df ~ 5, Bonferroni levels), where the other parametrisation
    still answers; a tail neither can compute is below 1e-300 and counts 0.
    """
    return _power(abs(nc), df, stats.t.ppf(1 - alpha / 2, df))  # the test is symmetric


def _power(nc: float, df: float, tc: float) -> float:
    """:func:`t_power` at the critical value ``tc`` (a solver computes it once)."""

    def tail(above, below) -> float:
        # The other parametrisation only where the first gave up (it costs as much again).
        value = above()
        if np.isfinite(value):
            return value
        value = below()
        return value if np.isfinite(value) else 0.0

    upper = tail(lambda: stats.nct.sf(tc, df, nc), lambda: 1.0 - stats.nct.cdf(tc, df, nc))
    lower = tail(lambda: stats.nct.sf(tc, df, -nc), lambda: stats.nct.cdf(-tc, df, nc))
    if not np.isfinite(upper) or upper == 0.0 and nc > tc:
        upper = stats.norm.sf(tc - nc)  # scipy gives up far beyond tc, where power is ~1
    return float(min(max(upper + lower, 0.0), 1.0))


@lru_cache(maxsize=4096)
def required_noncentrality(df: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The noncentrality at which :func:`t_power` reaches ``power`` (solved exactly)."""
    if not (np.isfinite(df) and df > 0):
        return np.nan
    tc = stats.t.ppf(1 - alpha / 2, df)
    f = lambda nc: _power(nc, df, tc) - power  # noqa: E731
    # The normal answer is a lower bound (t's heavier tails need more); the t answer with one
    # df is far above any study's. Brent's method then needs a handful of power evaluations;
    # 1e-9 in noncentrality is far below the 2 decimals a detectable difference is read to.
    lo = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    hi = lo * (1 + 2.0 / df)
    while f(lo) > 0:
        lo /= 2
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, lo, hi, xtol=1e-9, rtol=1e-12))


def planned_se(var_rater: float, var_image: float, var_resid: float, r: int, i: int):
    """Standard error and Satterthwaite df of a mean difference on a complete r x i design.

    :math:`se^2 = s_u^2/r + s_v^2/i + s_e^2/(ri)`; df from the expected mean squares
    :math:`i s_u^2 + s_e^2` (r - 1 df), :math:`r s_v^2 + s_e^2` (i - 1 df), :math:`s_e^2`
    ((r - 1)(i - 1) df), as :func:`study.analysis.crossed.crossed_mean` computes them.
    """
    if r < 2 or i < 2:
        return np.nan, np.nan
    ms_r, ms_i, ms_e = i * var_rater + var_resid, r * var_image + var_resid, var_resid
    v = ms_r + ms_i - ms_e
    with np.errstate(invalid="ignore", divide="ignore"):
        df = v * v / (ms_r**2 / (r - 1) + ms_i**2 / (i - 1) + ms_e**2 / ((r - 1) * (i - 1)))
    return float(np.sqrt(v / (r * i))), float(df)


def power_table(
    votes: pd.DataFrame,
    planned_raters: Sequence[int] = (15, 26, 40),
    planned_images: Sequence[int] = (50, 100),
    alpha: float = 0.05,
    power: float = 0.8,
    pairs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Smallest detectable MOS difference, now and for planned numbers of raters *and* images.

    Method: the crossed model of ``significance.csv``. For every pair of methods in a dataset
    the difference :math:`d_{ri}` has rater x method, image x method and residual variance
    components (:func:`study.analysis.crossed.crossed_mean`); their means over the dataset's
    pairs (:math:`s_u^2, s_v^2, s_e^2`) describe a typical pair. A complete design of r raters
    and i images then has :func:`planned_se` and df, and the detectable difference is the
    :math:`\\delta` at which the two-sided t test at level :math:`\\alpha` reaches the
    requested power (noncentral t, solved exactly); ``_corrected`` uses :math:`\\alpha/m` for the
    m pairs (Bonferroni, a bound for Holm). More raters cannot shrink the image term
    :math:`s_v^2/i`, nor more images the rater term: the table shows which to add. Assumes
    future raters and images resemble the current ones. ``pairs``, the
    :func:`study.analysis.significance.crossed_tests` table of the same votes, saves estimating
    the components twice (its ``sd_rater, sd_image, sd_resid``).

    Returns
    -------
    pandas.DataFrame
        ``dataset, n_raters, n_images, planned`` (False for the current design), ``n_comparisons,
        sd_rater, sd_image, sd_resid, se, df, alpha, power, min_detectable_diff,
        min_detectable_diff_corrected, note``. Rows: the current raters and images, then every
        combination of (current, ``planned_raters``) x (current, ``planned_images``).

    References
    ----------
    Cohen (1988), ch. 2; Westfall, Kenny & Judd (2014), "Statistical power and optimal design in
    experiments in which samples of participants respond to samples of stimuli", Journal of
    Experimental Psychology: General 143.
    """
    r = ratings(votes)
    rows = []
    for ds, g in r.groupby("dataset", sort=True, observed=True):
        methods = sorted(str(m) for m in g["method"].unique())
        m = len(methods) * (len(methods) - 1) // 2
        comps = _pair_components(g, methods) if pairs is None else _from_pairs(pairs, ds)
        now = (int(g["rater"].nunique()), int(g["image"].nunique()))
        designs = [now] + sorted(
            {(nr, ni) for nr in (now[0], *planned_raters) for ni in (now[1], *planned_images)}
            - {now}
        )
        for nr, ni in designs:
            se, df = planned_se(*comps, nr, ni) if np.isfinite(comps).all() else (np.nan, np.nan)
            rows.append(
                {
                    "dataset": str(ds),
                    "n_raters": nr,
                    "n_images": ni,
                    "planned": (nr, ni) != now,
                    "n_comparisons": m,
                    "sd_rater": np.sqrt(comps[0]),
                    "sd_image": np.sqrt(comps[1]),
                    "sd_resid": np.sqrt(comps[2]),
                    "se": se,
                    "df": df,
                    "alpha": alpha,
                    "power": power,
                    "min_detectable_diff": se * required_noncentrality(df, alpha, power),
                    "min_detectable_diff_corrected": se
                    * required_noncentrality(df, alpha / max(m, 1), power),
                    "note": _power_note(comps, nr, ni),
                }
            )
    return pd.DataFrame(rows)


def _pair_components(g: pd.DataFrame, methods: list[str]) -> np.ndarray:
    """Mean over the method pairs of (s_u^2, s_v^2, s_e^2) of their differences (NaN if none)."""
    if len(methods) < 2:
        return np.full(3, np.nan)
    x, _ = cells(g, methods)
    a, b = np.triu_indices(len(methods), 1)
    est = crossed_mean(np.moveaxis(x[:, :, a] - x[:, :, b], -1, 0))
    comps = np.vstack([est.var_rater, est.var_image, est.var_resid])[:, est.defined]
    return comps.mean(axis=1) if comps.shape[1] else np.full(3, np.nan)


def _from_pairs(pairs: pd.DataFrame, ds) -> np.ndarray:
    """(s_u^2, s_v^2, s_e^2) averaged over a dataset's defined rows of ``crossed_tests``."""
    sd = pairs.loc[pairs["dataset"] == str(ds), ["sd_rater", "sd_image", "sd_resid"]].dropna()
    return (sd.to_numpy() ** 2).mean(axis=0) if len(sd) else np.full(3, np.nan)


def _power_note(comps: np.ndarray, nr: int, ni: int) -> str:
    if not np.isfinite(comps).all():
        return "needs 2 methods rated by 2 raters on 2 images: undefined"
    if nr < 2 or ni < 2:
        return "fewer than 2 raters or 2 images: undefined"
    return ""
