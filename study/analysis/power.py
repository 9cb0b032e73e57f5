"""Planning: the smallest MOS difference a study can detect."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import optimize, stats

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


def power_table(
    votes: pd.DataFrame,
    planned: Sequence[int] = (15, 26, 40, 60),
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """Smallest detectable MOS difference between two methods, now and for planned rater counts.

    Method: the unit is the rater (the conservative pairing of :func:`pairwise_tests`). For every
    pair of methods in a dataset, each rater's mean vote under each method gives a per-rater
    difference; :math:`\\sigma_d` is the root mean of those differences' sample variances over the
    dataset's method pairs (pooled, ddof 1). For n raters the detectable difference is the
    :math:`\\delta` at which a two-sided paired t-test at level :math:`\\alpha` reaches the
    requested power (noncentral t, solved exactly). ``_corrected`` uses :math:`\\alpha/m` for the m
    method pairs of the dataset (Bonferroni, a bound for Holm); ``_wilcoxon`` divides n by the
    asymptotic relative efficiency :math:`3/\\pi` of the signed-rank test (Lehmann 1975), i.e.
    uses :math:`n \\cdot 3/\\pi` effective raters. Assumes future raters behave like the current
    ones (same :math:`\\sigma_d`) and the images stay the same.

    Returns
    -------
    pandas.DataFrame
        ``dataset, n_raters, planned`` (False for the current count), ``n_comparisons, sd_diff,
        alpha, power, min_detectable_diff, min_detectable_diff_corrected,
        min_detectable_diff_wilcoxon, note``.

    References
    ----------
    Cohen, J. (1988), Statistical power analysis for the behavioral sciences, ch. 2; Lehmann, E. L.
    (1975), Nonparametrics, ch. 2 (ARE). VQEG's VQEGNumSubjTool answers the same planning
    question; its method is not reproduced here.
    """
    r = ratings(votes)
    rows = []
    for ds, g in r.groupby("dataset", sort=True):
        per = g.groupby(["rater", "method"], observed=True)["score"].mean().unstack()
        methods = list(per.columns)
        variances = []
        for a, b in combinations(methods, 2):
            d = (per[a] - per[b]).dropna()
            if len(d) >= 2:
                variances.append(d.var(ddof=1))
        m = len(methods) * (len(methods) - 1) // 2
        sd = float(np.sqrt(np.mean(variances))) if variances else np.nan
        current = int(g["rater"].nunique())
        note = "" if variances else "needs 2 raters who rated 2 methods: undefined"
        for n, is_planned in [(current, False)] + [(int(p), True) for p in planned]:
            rows.append(
                {
                    "dataset": ds,
                    "n_raters": n,
                    "planned": is_planned,
                    "n_comparisons": m,
                    "sd_diff": sd,
                    "alpha": alpha,
                    "power": power,
                    "min_detectable_diff": detectable_difference(sd, n, alpha, power),
                    "min_detectable_diff_corrected": detectable_difference(
                        sd, n, alpha / max(m, 1), power
                    ),
                    "min_detectable_diff_wilcoxon": detectable_difference(
                        sd, n * ARE_WILCOXON, alpha, power
                    )
                    if n * ARE_WILCOXON >= 2
                    else np.nan,
                    "note": note if note else ("" if n >= 2 else "fewer than 2 raters: undefined"),
                }
            )
    return pd.DataFrame(rows)
