"""Are paired-comparison raters consistent? Circular triads per rater (Kendall and Babington Smith)
and agreement across raters (Kendall's u)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import chdtrc

from .pairwise import _pair_tallies, _tensor, comparisons


def max_circular_triads(t: int | np.ndarray) -> np.ndarray:
    """Kendall & Babington Smith's maximum number of circular triads among ``t`` objects:
    :math:`(t^3 - t)/24` for odd t, :math:`(t^3 - 4t)/24` for even t."""
    t = np.asarray(t, dtype=np.int64)
    return np.where(t % 2 == 1, (t**3 - t) // 24, (t**3 - 4 * t) // 24)


def circular_triads(counts) -> int:
    """Circular triads (i > j > k > i) in one observer's comparison matrix ``counts``.

    A pair is decided by the majority of that observer's choices on it; a tied or unjudged pair
    closes no triad. With every pair decided this equals Kendall & Babington Smith's
    :math:`d = t(t-1)(2t-1)/12 - \\tfrac12 \\sum_i a_i^2`, :math:`a_i` the wins of object i.
    """
    c = np.asarray(counts)
    a = (c > c.swapaxes(-1, -2)).astype(np.int64)
    return np.rint(np.trace(a @ a @ a, axis1=-2, axis2=-1) / 3).astype(np.int64)


def rater_consistency(
    votes: pd.DataFrame, level: str = "rater", kinds: tuple[str, ...] = ("rating",)
) -> pd.DataFrame:
    """Per-rater consistency: circular triads and Kendall's coefficient of consistency zeta.

    A block is one rater's comparisons of the methods of one image. It is complete when every
    pair of the methods it holds was decided (judged, and not tied when repeated); only there
    are the maximum and :math:`\\zeta = 1 - d/d_{max}` defined (1: no circular triad; 0: as many
    as possible). ``expected_random`` is :math:`\\binom{t}{3}/4`, the mean for random choices.

    Returns
    -------
    pandas.DataFrame
        ``level="block"``: ``rater, dataset, image, n_methods, n_pairs, complete,
        circular_triads, max_triads, expected_random, zeta`` (NaN where incomplete or fewer than
        three methods). ``level="rater"`` (default): ``rater, dataset, n_blocks, n_complete,
        circular_triads`` (all blocks), ``max_triads, expected_random`` (complete blocks) and
        ``zeta`` :math:`= 1 - \\sum d / \\sum d_{max}` over the complete blocks.

    References
    ----------
    Kendall & Babington Smith (1940), "On the method of paired comparisons", Biometrika 31.
    """
    if level not in ("rater", "block"):
        raise ValueError(f"level must be 'rater' or 'block', got {level!r}")
    v = comparisons(votes, kinds)
    rows = []
    for ds, g in v.groupby("dataset", sort=True):
        methods = sorted(set(g["method_a"]) | set(g["method_b"]))
        pairs = g[["rater", "image"]].to_numpy(dtype=str)
        keys, block = np.unique(pairs, axis=0, return_inverse=True)
        c = _tensor(block.ravel(), len(keys), g, methods)
        judged = (c + c.swapaxes(1, 2)) > 0
        t = judged.any(axis=2).sum(axis=1)
        decided = (c != c.swapaxes(1, 2)).sum(axis=(1, 2)) // 2
        d = circular_triads(c)
        complete = (decided == t * (t - 1) // 2) & (t >= 2)
        dmax = max_circular_triads(t)
        rows.append(
            pd.DataFrame(
                {
                    "rater": keys[:, 0],
                    "dataset": ds,
                    "image": keys[:, 1],
                    "n_methods": t,
                    "n_pairs": judged.sum(axis=(1, 2)) // 2,
                    "complete": complete,
                    "circular_triads": d,
                    "max_triads": np.where(complete, dmax, np.nan),
                    "expected_random": np.where(complete, t * (t - 1) * (t - 2) / 24, np.nan),
                    "zeta": np.where(complete & (t >= 3), 1 - d / np.maximum(dmax, 1), np.nan),
                }
            )
        )
    out = pd.concat(rows, ignore_index=True)
    if level == "block":
        return out
    return _per_rater(out)


def _per_rater(blocks: pd.DataFrame) -> pd.DataFrame:
    ok = blocks["complete"] & (blocks["n_methods"] >= 3)
    b = blocks.assign(
        _d=np.where(ok, blocks["circular_triads"], 0), _m=np.where(ok, blocks["max_triads"], 0)
    )
    g = b.groupby(["rater", "dataset"], sort=True)
    out = g.agg(
        n_blocks=("image", "size"),
        n_complete=("complete", "sum"),
        circular_triads=("circular_triads", "sum"),
        _d=("_d", "sum"),
        max_triads=("_m", "sum"),
        expected_random=("expected_random", "sum"),
    ).reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["zeta"] = np.where(out["max_triads"] > 0, 1 - out["_d"] / out["max_triads"], np.nan)
    return out.drop(columns="_d")


def agreement(
    votes: pd.DataFrame, per_image: bool = False, kinds: tuple[str, ...] = ("rating",)
) -> pd.DataFrame:
    """Kendall's coefficient of agreement u across raters, per dataset or per image.

    An item is one pair of methods on one image; :math:`\\gamma` counts the judgments preferring
    each side. With :math:`\\Sigma = \\sum_{items} [\\binom{\\gamma_{ab}}{2} +
    \\binom{\\gamma_{ba}}{2}]` (pairs of judgments that agree),
    :math:`u = 2\\Sigma / \\sum_{items} \\binom{n}{2} - 1`, which is Kendall's
    :math:`2\\Sigma/(\\binom{m}{2}\\binom{t}{2}) - 1` when each of m raters judged every pair of t
    methods once (pooled over images, :math:`\\binom{t}{2}` becomes the number of items K).
    u = 1 when all agree; its minimum is :math:`-1/(m-1)` (m even) or :math:`-1/m` (m odd).
    Balanced designs (every item judged m >= 3 times) get Kendall's test of u > chance:
    :math:`\\chi^2 = \\frac{4}{m-2}[\\Sigma - \\tfrac12 K \\binom{m}{2} \\frac{m-3}{m-2}]` with
    :math:`K m (m-1)/(m-2)^2` degrees of freedom. Each judgment counts as one observer's; a rater's
    repeated judgments of an item count separately.

    Returns
    -------
    pandas.DataFrame
        ``dataset, [image,] n_raters, n_methods, n_items, n_judgments, balanced`` (all items
        judged the same number of times), ``m`` (that number, else NaN), ``u, u_min, chi2, df,
        p`` (NaN unless balanced with m >= 3).

    References
    ----------
    Kendall & Babington Smith (1940), Biometrika 31; Siegel & Castellan (1988), Nonparametric
    Statistics for the Behavioral Sciences, 2nd ed., section 9.7.
    """
    by = ["dataset", "image"] if per_image else ["dataset"]
    v = comparisons(votes, kinds)
    items = _pair_tallies(v, ["dataset", "image"], None)
    items["_agree"] = _pairs_of(items["wins_a"]) + _pairs_of(items["wins_b"])
    items["_all"] = _pairs_of(items["n"])
    g = items.groupby(by, sort=True)
    out = g.agg(
        n_items=("n", "size"),
        n_judgments=("n", "sum"),
        _agree=("_agree", "sum"),
        _all=("_all", "sum"),
        _lo=("n", "min"),
        _hi=("n", "max"),
    ).reset_index()
    out["n_raters"] = v.groupby(by, sort=True)["rater"].nunique().to_numpy()
    ends = [items[[*by, c]].set_axis([*by, "_m"], axis=1) for c in ("method_a", "method_b")]
    out["n_methods"] = pd.concat(ends).groupby(by, sort=True)["_m"].nunique().to_numpy()
    out["balanced"] = out["_lo"] == out["_hi"]
    m = np.where(out["balanced"], out["_lo"], np.nan)
    out["m"] = m
    with np.errstate(invalid="ignore", divide="ignore"):
        out["u"] = np.where(out["_all"] > 0, 2 * out["_agree"] / out["_all"] - 1, np.nan)
        out["u_min"] = np.where(m % 2 == 0, -1 / (m - 1), -1 / m)
        k = out["n_items"].to_numpy(dtype=float)
        chi2 = 4 / (m - 2) * (out["_agree"] - 0.5 * k * m * (m - 1) / 2 * (m - 3) / (m - 2))
        df = k * m * (m - 1) / (m - 2) ** 2
    ok = m >= 3
    out["chi2"] = np.where(ok, chi2, np.nan)
    out["df"] = np.where(ok, df, np.nan)
    out["p"] = np.where(ok, chdtrc(out["df"], out["chi2"]), np.nan)
    cols = ["n_raters", "n_methods", "n_items", "n_judgments", "balanced", "m", "u", "u_min"]
    return out[[*by, *cols, "chi2", "df", "p"]]


def _pairs_of(n: pd.Series) -> np.ndarray:
    n = n.to_numpy(dtype=np.int64)
    return n * (n - 1) // 2
