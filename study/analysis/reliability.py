"""Study-level reliability: Krippendorff's alpha and intraclass correlations."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from .schema import STIMULUS, ratings


def _first_votes(r: pd.DataFrame) -> pd.DataFrame:
    return (
        r.sort_values("repeat", kind="stable").groupby([*STIMULUS, "rater"], observed=True).head(1)
    )


def krippendorff_alpha(votes: pd.DataFrame, level: str = "ordinal") -> float:
    """Krippendorff's alpha over stimuli (units) and raters (coders).

    :math:`\\alpha = 1 - D_o / D_e` from the coincidence matrix
    :math:`o_{ck} = \\sum_u n_{uc} n_{uk} / (m_u - 1)` (:math:`o_{cc}` uses
    :math:`n_{uc}(n_{uc} - 1)`), over units with :math:`m_u \\ge 2` values;
    :math:`D_o = \\sum_{c,k} o_{ck}\\,\\delta^2_{ck} / n`,
    :math:`D_e = \\sum_{c,k} n_c n_k\\,\\delta^2_{ck} / (n (n - 1))`. Interval:
    :math:`\\delta^2_{ck} = (c - k)^2`; ordinal:
    :math:`\\delta^2_{ck} = (\\sum_{g=c}^{k} n_g - (n_c + n_k)/2)^2`.

    Missing-data policy: missing votes are absent pairs (alpha's own handling); units with one
    value do not count. A rater's repeated votes on a stimulus: only the first (lowest ``repeat``)
    counts, as alpha has one value per coder and unit.

    Returns
    -------
    float
        NaN when no unit has two values or all values are equal (:math:`D_e = 0`).

    References
    ----------
    Krippendorff, K. (2011), "Computing Krippendorff's alpha-reliability", UPenn; Hayes &
    Krippendorff (2007). Same estimator as the ``krippendorff`` package.
    """
    if level not in ("ordinal", "interval"):
        raise ValueError(f"level must be 'ordinal' or 'interval', got {level!r}")
    return _alpha(_first_votes(ratings(votes)), level)


def _unit_coincidences(r: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and each pairable unit's coincidence matrix (units x values x values)."""
    unit = r.groupby(list(STIMULUS), observed=True).ngroup().to_numpy()
    values, vi = np.unique(r["score"].to_numpy(), return_inverse=True)
    n_u = np.zeros((unit.max() + 1, len(values)))
    np.add.at(n_u, (unit, vi), 1.0)
    m_u = n_u.sum(axis=1)
    n_u, m_u = n_u[m_u >= 2], m_u[m_u >= 2]
    p_u = n_u[:, :, None] * n_u[:, None, :]
    idx = np.arange(len(values))
    p_u[:, idx, idx] -= n_u
    return values, p_u / (m_u - 1)[:, None, None]


def _alpha_from(o: np.ndarray, values: np.ndarray, level: str) -> np.ndarray:
    """Alpha from coincidence matrices ``o`` of shape (..., V, V)."""
    n_c = o.sum(axis=-2)
    n = n_c.sum(axis=-1)
    if level == "interval":
        d2 = (values[:, None] - values[None, :]) ** 2
    else:
        cum = np.cumsum(n_c, axis=-1)
        i, k = np.meshgrid(np.arange(len(values)), np.arange(len(values)), indexing="ij")
        lo, hi = np.minimum(i, k), np.maximum(i, k)
        below = np.where(lo > 0, cum[..., np.maximum(lo - 1, 0)], 0.0)
        d2 = (cum[..., hi] - below - (n_c[..., i] + n_c[..., k]) / 2.0) ** 2
    d_o = (o * d2).sum(axis=(-2, -1))
    d_e = (n_c[..., :, None] * n_c[..., None, :] * d2).sum(axis=(-2, -1)) / (n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d_e > 0, 1.0 - d_o / d_e, np.nan)


def _alpha(r: pd.DataFrame | tuple, level: str) -> float:
    values, p_u = r if isinstance(r, tuple) else _unit_coincidences(r)
    if len(p_u) == 0:
        return np.nan
    return float(_alpha_from(p_u.sum(axis=0), values, level))


def alpha_bootstrap_ci(
    votes: pd.DataFrame, level: str = "ordinal", n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile 95% CI of Krippendorff's alpha from resampling stimuli (units) with replacement.

    Each replicate redraws the pairable units and recomputes alpha from their coincidence
    matrices. This unit bootstrap is simpler than Krippendorff's own algorithm (which resamples
    pairable values); it is reported as such. Deterministic for a given ``seed``.
    """
    return _alpha_ci(_first_votes(ratings(votes)), level, n_boot, seed)


def _alpha_ci(r: pd.DataFrame | tuple, level: str, n_boot: int = 1000, seed: int = 0):
    return _alpha_cis(r, (level,), n_boot, seed)[level]


def _alpha_cis(r: pd.DataFrame | tuple, levels, n_boot: int = 1000, seed: int = 0) -> dict:
    """{level: :func:`_alpha_ci`} for each of ``levels``, from one set of resamples (the
    same resamples each level's own call draws with ``seed``: the same intervals, in half the
    time for two levels)."""
    values, p_u = r if isinstance(r, tuple) else _unit_coincidences(r)
    if not levels or len(p_u) < 2 or len(values) > 25:
        return dict.fromkeys(levels, (np.nan, np.nan))
    rng = np.random.default_rng(seed)
    u = len(p_u)
    draws = rng.integers(0, u, (n_boot, u)) + (np.arange(n_boot) * u)[:, None]
    w = np.bincount(draws.ravel(), minlength=n_boot * u).reshape(n_boot, u)
    o = (w @ p_u.reshape(len(p_u), -1)).reshape(n_boot, len(values), len(values))
    out = {}
    for level in levels:
        a = _alpha_from(o, values, level)
        a = a[np.isfinite(a)]
        if len(a) < n_boot // 2:
            out[level] = (np.nan, np.nan)
        else:
            lo, hi = np.percentile(a, [2.5, 97.5])
            out[level] = (float(lo), float(hi))
    return out


ICC_TYPES = ("ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)")
_ICC_DESCRIPTIONS = (
    "single rater, one-way random",
    "single rater, absolute agreement",
    "single rater, consistency",
    "mean of k raters, one-way random",
    "mean of k raters, absolute agreement",
    "mean of k raters, consistency",
)


class _Anova(NamedTuple):
    """Mean squares of the two-way ANOVA of a complete targets x raters table."""

    n: int  # targets (stimuli)
    k: int  # judges (raters)
    msb: float  # between targets
    msj: float  # between judges
    mse: float  # residual
    msw: float  # within targets: judges and residual pooled, the one-way model's error


def icc(votes: pd.DataFrame) -> pd.DataFrame:
    """Intraclass correlations of Shrout & Fleiss (1979) / McGraw & Wong (1996).

    Targets are stimuli, judges are raters; a rater's repeats on a stimulus are averaged. From the
    two-way ANOVA mean squares (targets MSB, raters MSJ, error MSE, within-target MSW):
    ICC(1,1) = (MSB - MSW)/(MSB + (k-1)MSW); ICC(A,1) = (MSB - MSE)/(MSB + (k-1)MSE + k(MSJ -
    MSE)/n); ICC(C,1) = (MSB - MSE)/(MSB + (k-1)MSE); the average-measure forms divide by MSB
    (A,k adds (MSJ - MSE)/n). F tests and 95% CIs as in Shrout & Fleiss (McGraw & Wong for A).

    Missing-data policy: listwise deletion: only stimuli rated by every rater enter (as pingouin's
    ``nan_policy="omit"``); with partial designs this can leave nothing, and the result says so.

    Returns
    -------
    pandas.DataFrame
        Six rows: ``type`` (ICC(1,1), ICC(A,1), ICC(C,1), ICC(1,k), ICC(A,k), ICC(C,k)),
        ``description, icc, F, df1, df2, p, ci95_low, ci95_high, n_targets, n_raters,
        n_targets_dropped, note``.

    References
    ----------
    Shrout, P. E. & Fleiss, J. L. (1979), Psychological Bulletin 86(2), 420-428. McGraw, K. O. &
    Wong, S. P. (1996), Psychological Methods 1(1), 30-46. Matches ``pingouin.intraclass_corr``.
    """
    r = ratings(votes)
    wide = r.pivot_table(
        index=list(STIMULUS), columns="rater", values="score", aggfunc="mean", observed=True
    )
    full = wide.dropna()
    n, k = full.shape
    base = pd.DataFrame({"type": ICC_TYPES, "description": _ICC_DESCRIPTIONS})
    base["n_targets"], base["n_raters"], base["n_targets_dropped"] = n, k, len(wide) - n
    if n < 2 or k < 2:
        return _icc_undefined(base, n, k)
    aov = _anova(full.to_numpy())
    estimates = _icc_values(aov)
    base["icc"] = estimates
    for col, values in _icc_f_tests(aov).items():
        base[col] = values
    base["ci95_low"], base["ci95_high"] = _icc_cis(aov, icc_a=estimates[1])
    base["note"] = (
        "" if len(wide) == n else f"{len(wide) - n} stimuli without a vote of every rater dropped"
    )
    return base


def _icc_undefined(base: pd.DataFrame, n: int, k: int) -> pd.DataFrame:
    """``base`` with every statistic NaN and a note saying how little complete data there was."""
    for c in ("icc", "F", "df1", "df2", "p", "ci95_low", "ci95_high"):
        base[c] = np.nan
    base["note"] = (
        f"undefined: {n} stimuli rated by all {k} raters "
        "(ICC needs >= 2 of each with complete data)"
    )
    return base


def _anova(y: np.ndarray) -> _Anova:
    """Sums of squares of ``y`` (targets x raters, no missing cell) over their degrees of freedom."""
    n, k = y.shape
    grand = y.mean()
    ssb = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ssj = n * ((y.mean(axis=0) - grand) ** 2).sum()
    sst = ((y - grand) ** 2).sum()
    sse = sst - ssb - ssj
    msb, msj = ssb / (n - 1), ssj / (k - 1)
    mse = sse / ((n - 1) * (k - 1))
    msw = (ssj + sse) / (n * (k - 1))
    return _Anova(n, k, msb, msj, mse, msw)


def _icc_values(aov: _Anova) -> list[float]:
    """The six ICCs in ``ICC_TYPES`` order (NaN or inf where a mean square is zero)."""
    n, k, msb, msj, mse, msw = aov
    with np.errstate(divide="ignore", invalid="ignore"):
        return [
            (msb - msw) / (msb + (k - 1) * msw),
            (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n),
            (msb - mse) / (msb + (k - 1) * mse),
            (msb - msw) / msb,
            (msb - mse) / (msb + (msj - mse) / n),
            (msb - mse) / msb,
        ]


def _icc_f_tests(aov: _Anova) -> dict[str, list | int]:
    """Columns ``F, df1, df2, p`` of the tests of ICC = 0, in ``ICC_TYPES`` order.

    The one-way forms test MSB/MSW, the two-way forms (A and C share a test) MSB/MSE.
    """
    n, k, msb, _, mse, msw = aov
    df1, df1w, df3 = n - 1, n * (k - 1), (n - 1) * (k - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1, f3 = msb / msw, msb / mse
        p1, p3 = stats.f.sf(f1, df1, df1w), stats.f.sf(f3, df1, df3)
    return {
        "F": [f1, f3, f3, f1, f3, f3],
        "df1": df1,
        "df2": [df1w, df3, df3, df1w, df3, df3],
        "p": [p1, p3, p3, p1, p3, p3],
    }


def _icc_cis(aov: _Anova, icc_a: float, a: float = 0.05) -> tuple[list[float], list[float]]:
    """Lower and upper 95% bounds of the six ICCs, in ``ICC_TYPES`` order.

    ICC(1,*) and ICC(C,*) invert their F tests (Shrout & Fleiss 1979); ICC(A,*) has no exact
    interval, so it takes McGraw & Wong's (1996) approximation around the estimate ``icc_a``.
    """
    n, k, msb, _, mse, msw = aov
    df1, df1w, df3 = n - 1, n * (k - 1), (n - 1) * (k - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1, f3 = msb / msw, msb / mse
        f1l, f1u = f1 / stats.f.ppf(1 - a / 2, df1, df1w), f1 * stats.f.ppf(1 - a / 2, df1w, df1)
        f3l, f3u = f3 / stats.f.ppf(1 - a / 2, df1, df3), f3 * stats.f.ppf(1 - a / 2, df3, df1)
        l2, u2 = _agreement_ci(aov, icc_a, a)
    low = [
        (f1l - 1) / (f1l + k - 1),
        l2,
        (f3l - 1) / (f3l + k - 1),
        1 - 1 / f1l,
        l2 * k / (1 + l2 * (k - 1)),
        1 - 1 / f3l,
    ]
    high = [
        (f1u - 1) / (f1u + k - 1),
        u2,
        (f3u - 1) / (f3u + k - 1),
        1 - 1 / f1u,
        u2 * k / (1 + u2 * (k - 1)),
        1 - 1 / f3u,
    ]
    return low, high


def _agreement_ci(aov: _Anova, icc_a: float, a: float) -> tuple[float, float]:
    """McGraw & Wong's bounds of ICC(A,1), with Satterthwaite's degrees of freedom ``v``."""
    n, k, msb, msj, mse, _ = aov
    df1, df3 = n - 1, (n - 1) * (k - 1)
    fj = msj / mse
    vn = df3 * (k * icc_a * fj + n * (1 + (k - 1) * icc_a) - k * icc_a) ** 2
    vd = df1 * k**2 * icc_a**2 * fj**2 + (n * (1 + (k - 1) * icc_a) - k * icc_a) ** 2
    v = vn / vd
    f2u, f2l = stats.f.ppf(1 - a / 2, n - 1, v), stats.f.ppf(1 - a / 2, v, n - 1)
    l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
    u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)
    return l2, u2


def reliability_table(votes: pd.DataFrame) -> pd.DataFrame:
    """Alpha (ordinal, interval) and the six ICCs per dataset and over all datasets.

    Returns
    -------
    pandas.DataFrame
        ``dataset`` ("all" for the pooled row), ``measure, value, ci95_low, ci95_high, n_units,
        n_raters, note``.
    """
    r = ratings(votes)
    rows = []
    groups = (
        [("all", r)] + list(r.groupby("dataset", sort=True))
        if r["dataset"].nunique() > 1
        else list(r.groupby("dataset", sort=True))
    )
    for ds, g in groups:
        first = _first_votes(g)
        n_units = first.groupby(list(STIMULUS), observed=True).ngroups
        coinc = _unit_coincidences(first)
        levels = ("ordinal", "interval")
        alphas = {level: _alpha(coinc, level) for level in levels}
        cis = _alpha_cis(coinc, [level for level in levels if np.isfinite(alphas[level])])
        for level in levels:
            a = alphas[level]
            lo, hi = cis.get(level, (np.nan, np.nan))
            if np.isnan(a):
                note = "undefined: fewer than 2 raters per stimulus or no variation"
            elif np.isnan(lo):
                note = "CI undefined: too few stimuli to bootstrap"
            else:
                note = "CI: percentile bootstrap over stimuli, 1000 resamples"
            rows.append(
                {
                    "dataset": ds,
                    "measure": f"krippendorff_alpha_{level}",
                    "value": a,
                    "ci95_low": lo,
                    "ci95_high": hi,
                    "n_units": n_units,
                    "n_raters": g["rater"].nunique(),
                    "note": note,
                }
            )
        for _, row in icc(g).iterrows():
            rows.append(
                {
                    "dataset": ds,
                    "measure": row["type"],
                    "value": row["icc"],
                    "ci95_low": row["ci95_low"],
                    "ci95_high": row["ci95_high"],
                    "n_units": row["n_targets"],
                    "n_raters": row["n_raters"],
                    "note": row["note"],
                }
            )
    return pd.DataFrame(rows)
