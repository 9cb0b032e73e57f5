"""The SRGAN paper's tests, kept beside the primary one so a re-run can be set beside the paper:
Wilcoxon signed-rank over rater x image pairs (or per rater), Mann-Whitney U, Friedman. They take
the study's raters and images as fixed (docs/analysis.md)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .order import order_methods
from .schema import ratings
from .significance import bh, holm

PAIRINGS = {
    "rater_image": "pairs are one rater's votes on the same image under the two methods",
    "rater": "pairs are one rater's mean vote over the dataset's images under the two methods",
    "none": "unpaired: all votes of one method against all votes of the other (Mann-Whitney U)",
}


def rank_biserial_paired(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of differences ``d`` (zeros dropped).

    :math:`r = (T_+ - T_-)/(T_+ + T_-)` with :math:`T_\\pm` the rank sums of the positive and
    negative differences (ranks of :math:`|d|`, ties averaged). Kerby (2014), as pingouin's RBC.
    """
    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    if len(d) == 0:
        return np.nan
    rk = _abs_ranks(d)
    return float((rk[d > 0].sum() - rk[d < 0].sum()) / rk.sum())


def _abs_ranks(d: np.ndarray) -> np.ndarray:
    """Average ranks of |d| (ties share the mean rank), as ``scipy.stats.rankdata``."""
    _, inv, t = np.unique(np.abs(d), return_inverse=True, return_counts=True)
    return (np.cumsum(t) - (t - 1) / 2.0)[inv]


def signed_rank_test(d: np.ndarray, zero_method: str = "wilcox") -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired differences ``d``: (statistic, p).

    Identical to :func:`scipy.stats.wilcoxon` with its defaults (``method="auto"``, no continuity
    correction), except for 14-50 pairs with ties or zeros, where scipy takes the normal
    approximation and this takes 9,999 seeded sign flips (:func:`signed_rank_method` says which). scipy switches to the normal approximation above 50 pairs; there this computes
    the same statistic, tie-corrected variance and p directly, which is much faster than scipy's
    generic path when hundreds of method pairs are tested.
    """
    d = np.asarray(d, dtype=float)
    nz = d[d != 0]
    method = signed_rank_method(d, zero_method)
    if method.startswith("exact sign-flip"):
        return _signed_rank_permutation(d)
    if method.startswith("sign-flip permutation"):
        return _signed_rank_permutation(d, SIGN_FLIPS)
    if zero_method != "wilcox" or len(d) <= 50:
        res = stats.wilcoxon(d, zero_method=zero_method)
        return float(res.statistic), float(res.pvalue)
    n = len(nz)
    if n == 0:
        return np.nan, np.nan
    values, inv, t = np.unique(np.abs(nz), return_inverse=True, return_counts=True)
    upper = np.cumsum(t)
    ranks = (upper - (t - 1) / 2.0)[inv]
    r_plus = ranks[nz > 0].sum()
    r_minus = ranks[nz < 0].sum()
    mn = n * (n + 1.0) * 0.25
    se = np.sqrt((n * (n + 1.0) * (2.0 * n + 1.0) - (t.astype(float) ** 3 - t).sum() / 2) / 24)
    if se == 0:
        return float(min(r_plus, r_minus)), np.nan
    z = (r_plus - mn) / se
    p = 2 * min(stats.norm.cdf(z), stats.norm.sf(z))
    return float(min(r_plus, r_minus)), float(min(p, 1.0))


# Few pairs with ties or zeros (per-rater means of 14-50 raters): scipy falls back to the normal
# approximation there; seeded random sign flips give a p that holds at that size.
EXACT_FLIPS_MAX = 13
SIGN_FLIPS = 9_999


def signed_rank_method(d: np.ndarray, zero_method: str = "wilcox") -> str:
    """How :func:`signed_rank_test` finds p for the differences ``d``, in words."""
    d = np.asarray(d, dtype=float)
    nz = d[d != 0]
    tied = len(nz) < len(d) or len(np.unique(np.abs(nz))) < len(nz)
    if zero_method == "wilcox" and len(nz) and tied and len(d) <= 50:
        if len(d) <= EXACT_FLIPS_MAX:
            return f"exact sign-flip ({2 ** len(d):,} flips)"
        return f"sign-flip permutation ({SIGN_FLIPS:,} random flips, seeded)"
    if zero_method != "wilcox" or len(d) <= 50:
        return "exact (no ties)" if not tied and len(d) <= 50 else "normal approximation"
    return "normal approximation"


def _signed_rank_permutation(d: np.ndarray, n_random: int = 0) -> tuple[float, float]:
    r"""scipy's small-sample path (n <= 13 with ties or zeros): the exact sign-flip distribution.

    All :math:`2^n` sign flips of ``d`` give the null distribution of :math:`T_+`; the two-sided
    p is :math:`\min(1, 2\min(P(T \le t), P(T \ge t)))` with scipy's relative tolerance
    :math:`100\,\epsilon\,|t|`. Enumerated directly, it is ~1000x faster than
    :func:`scipy.stats.permutation_test` and gives the same numbers.
    """
    n = len(d)
    nzmask = d != 0
    ranks = np.zeros(n)
    ranks[nzmask] = stats.rankdata(np.abs(d[nzmask]))
    positive = d > 0
    observed = ranks[positive].sum()
    if n_random:
        flips = np.random.default_rng(0).random((n_random, n)) < 0.5
    else:
        flips = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
    null = np.where(flips, ~positive, positive) @ ranks  # T+ after flipping the marked signs
    gamma = abs(np.finfo(float).eps * 100 * observed)
    less, greater = (
        np.count_nonzero(null <= observed + gamma),
        np.count_nonzero(null >= observed - gamma),
    )
    if n_random:  # the observed signs count as one of the flips (Phipson & Smyth 2010)
        p_less, p_greater = (less + 1) / (n_random + 1), (greater + 1) / (n_random + 1)
    else:
        p_less, p_greater = less / len(null), greater / len(null)
    r_minus = ranks[d < 0].sum()
    return float(min(observed, r_minus)), float(min(1.0, 2 * min(p_less, p_greater)))


def _paired_table(r: pd.DataFrame, pairing: str) -> pd.DataFrame:
    """Wide table: one row per pairing unit, one column per method (NaN where not rated)."""
    if pairing == "rater_image":
        unit = ["rater", "image"]
    else:
        unit = ["rater"]
    return r.pivot_table(
        index=unit, columns="method", values="score", aggfunc="mean", observed=True
    )


def pairwise_tests(
    votes: pd.DataFrame,
    pairing: str = "rater_image",
    zero_method: str = "wilcox",
    family: str = "dataset",
    method_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Two-sided test of every pair of methods within each dataset.

    Parameters
    ----------
    votes : pandas.DataFrame
        Long vote table; ``kind == "rating"`` votes. A rater's repeated votes on a stimulus are
        averaged before pairing.
    pairing : {"rater_image", "rater", "none"}
        ``"rater_image"`` (default): a pair is one rater's votes on the same image under both
        methods. ``"rater"``: a pair is one rater's mean vote under each method over the dataset's
        images (one pair per rater; more conservative). Both use the Wilcoxon signed-rank test the
        SRGAN paper used (scipy's default: exact for n <= 50 without ties or zeros, otherwise the
        normal approximation). ``"none"``: Mann-Whitney U on all votes of the two methods, for
        designs where raters did not see both.
    zero_method : str
        Passed to :func:`scipy.stats.wilcoxon` (default ``"wilcox"`` drops zero differences, which
        integer votes produce often; ``n_nonzero`` reports how many remained).
    family : {"dataset", "all"}
        The set of tests over which Holm and Benjamini-Hochberg adjust: each dataset's pairs
        (default) or all pairs of all datasets.
    method_order : sequence of str, optional
        The order of the methods (e.g. the paper's): each pair has ``method_a`` before
        ``method_b`` in it, and pairs follow it. Default: alphabetical.

    Returns
    -------
    pandas.DataFrame
        ``dataset, method_a, method_b, test, pairing, n_pairs, n_nonzero, mos_a, mos_b, mean_diff``
        (a - b over the pairs), ``statistic`` (W = smaller signed-rank sum, or U of method a),
        ``p, p_holm, p_bh, effect`` (matched-pairs rank-biserial, or for Mann-Whitney
        :math:`2U_a/(n_a n_b) - 1`; positive when a is rated higher), ``significant_holm``
        (p_holm < 0.05), ``note`` (why p is NaN: no pairs, all differences zero).

    References
    ----------
    Wilcoxon (1945); Holm (1979); Benjamini & Hochberg (1995); Kerby (2014), "The simple difference
    formula", Comprehensive Psychology 3. Ledig et al. (2017), SRGAN, section 3.3.
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got {pairing!r}")
    if family not in ("dataset", "all"):
        raise ValueError(f"family must be 'dataset' or 'all', got {family!r}")
    r = ratings(votes)
    # Repeats of one rater on one stimulus are averaged so every unit contributes one value.
    r = r.groupby(["dataset", "image", "method", "rater"], observed=True, as_index=False)[
        "score"
    ].mean()
    rows = []
    for ds, g in r.groupby("dataset", sort=True):
        methods = order_methods(g["method"].unique(), method_order)
        wide = None
        if pairing != "none":
            table = _paired_table(g, pairing)
            wide = (table.to_numpy(dtype=float), {m: i for i, m in enumerate(table.columns)})
        for a, b in combinations(methods, 2):
            if pairing == "none":
                rows.append(_mwu(ds, a, b, g))
            else:
                rows.append(_wilcoxon(ds, a, b, wide, pairing, zero_method))
    cols = [
        "dataset",
        "method_a",
        "method_b",
        "test",
        "pairing",
        "n_pairs",
        "n_nonzero",
        "mos_a",
        "mos_b",
        "mean_diff",
        "statistic",
        "p",
        "effect",
        "p_method",
        "note",
    ]
    out = pd.DataFrame(rows, columns=cols)
    if out.empty:
        out["p_holm"] = out["p_bh"] = []
    elif family == "all":
        out["p_holm"] = holm(out["p"].to_numpy())
        out["p_bh"] = bh(out["p"].to_numpy())
    else:
        out["p_holm"] = out.groupby("dataset")["p"].transform(lambda p: holm(p.to_numpy()))
        out["p_bh"] = out.groupby("dataset")["p"].transform(lambda p: bh(p.to_numpy()))
    out["significant_holm"] = out["p_holm"] < 0.05
    head = [*cols[:12], "p_method", "p_holm", "p_bh", "effect", "significant_holm", "note"]
    return out[head]


def _wilcoxon(ds, a, b, wide, pairing, zero_method) -> dict:
    arr, cols = wide
    x, y = arr[:, cols[a]], arr[:, cols[b]]
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    d = x - y
    row = {
        "dataset": ds,
        "method_a": a,
        "method_b": b,
        "test": "wilcoxon",
        "pairing": pairing,
        "n_pairs": len(d),
        "n_nonzero": int((d != 0).sum()),
        "mos_a": x.mean() if len(d) else np.nan,
        "mos_b": y.mean() if len(d) else np.nan,
        "mean_diff": d.mean() if len(d) else np.nan,
        "statistic": np.nan,
        "p": np.nan,
        "effect": rank_biserial_paired(d),
        "p_method": "",
        "note": "",
    }
    if len(d) == 0:
        row["note"] = "no pairs: no rater rated both methods"
    elif (d != 0).sum() == 0:
        row["note"] = "all paired differences are zero: test undefined"
    else:
        row["statistic"], row["p"] = signed_rank_test(d, zero_method)
        row["p_method"] = signed_rank_method(d, zero_method)
        if np.isnan(row["p"]):
            row["note"] = "test undefined for these pairs"
    return row


def _mwu(ds, a, b, g) -> dict:
    x = g.loc[g["method"] == a, "score"].to_numpy()
    y = g.loc[g["method"] == b, "score"].to_numpy()
    row = {
        "dataset": ds,
        "method_a": a,
        "method_b": b,
        "test": "mannwhitneyu",
        "pairing": "none",
        "n_pairs": 0,
        "n_nonzero": 0,
        "mos_a": x.mean(),
        "mos_b": y.mean(),
        "mean_diff": x.mean() - y.mean(),
        "statistic": np.nan,
        "p": np.nan,
        "effect": np.nan,
        "p_method": "",
        "note": "",
    }
    if np.ptp(np.concatenate([x, y])) == 0:
        row["note"] = "all votes equal: test undefined"
        return row
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    row["p_method"] = "scipy mannwhitneyu (exact without ties up to 8 per side, else normal)"
    row["statistic"], row["p"] = float(res.statistic), float(res.pvalue)
    row["effect"] = 2 * res.statistic / (len(x) * len(y)) - 1
    return row


def friedman(votes: pd.DataFrame, pairing: str = "rater_image") -> pd.DataFrame:
    """Friedman omnibus test of the methods within each dataset.

    Blocks are the pairing units (``"rater_image"`` or ``"rater"``, as in :func:`pairwise_tests`);
    a block enters only when it has a vote under every method of the dataset (listwise deletion,
    the test needs complete blocks).

    Returns
    -------
    pandas.DataFrame
        ``dataset, pairing, n_methods, n_blocks, n_blocks_dropped, statistic`` (chi-square, ties
        corrected), ``df, p, kendall_w`` (:math:`\\chi^2 / (n (k - 1))`), ``note``.

    References
    ----------
    Friedman (1937); :func:`scipy.stats.friedmanchisquare`.
    """
    if pairing not in ("rater_image", "rater"):
        raise ValueError(f"pairing must be 'rater_image' or 'rater', got {pairing!r}")
    r = ratings(votes)
    rows = []
    for ds, g in r.groupby("dataset", sort=True):
        wide = _paired_table(g, pairing)
        full = wide.dropna()
        k, n = wide.shape[1], len(full)
        row = {
            "dataset": ds,
            "pairing": pairing,
            "n_methods": k,
            "n_blocks": n,
            "n_blocks_dropped": len(wide) - n,
            "statistic": np.nan,
            "df": k - 1,
            "p": np.nan,
            "kendall_w": np.nan,
            "note": "",
        }
        if k < 3:
            row["note"] = "Friedman needs at least 3 methods"
        elif n < 2:
            row["note"] = "fewer than 2 complete blocks"
        elif np.all(full.to_numpy() == full.to_numpy()[:, :1]):
            row["note"] = "every block rates all methods equally: test undefined"
        else:
            res = stats.friedmanchisquare(*[full[c].to_numpy() for c in full.columns])
            row["statistic"], row["p"] = float(res.statistic), float(res.pvalue)
            row["kendall_w"] = row["statistic"] / (n * (k - 1))
        rows.append(row)
    return pd.DataFrame(rows)
