"""Rater screening: reported per rater, never applied silently.

Every function returns one row per rater with the statistic and a boolean flag; the caller (or
:func:`study.analysis.write_report`) decides what to exclude and shows MOS with and without the
flagged raters (:func:`mos_with_and_without`).

This module holds the panel statistics (ITU-R BT.500 outliers, ITU-T P.913 bias, agreement with
the other raters) and the combined table :func:`screen_raters`; the checks built into a session
(gold answers, test-retest, straight-lining) live in :mod:`study.analysis.session_checks` and are
re-exported here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ._codes import code
from .mos import summarize
from .schema import STIMULUS, VotesError, ratings, validate_votes
from .session_checks import ANCHORS, gold_consistency, retest_agreement, straightlining

__all__ = [
    "ANCHORS",
    "BT500_VERSION",
    "FLAG_COLUMNS",
    "bt500_screening",
    "gold_consistency",
    "mos_with_and_without",
    "p913_adjusted",
    "p913_bias",
    "rater_agreement",
    "retest_agreement",
    "screen_raters",
    "straightlining",
]

BT500_VERSION = "bt500-sureal-0.9.0"


def bt500_screening(votes: pd.DataFrame, zero_std: str = "skip") -> pd.DataFrame:
    """ITU-R BT.500 observer screening, as Netflix sureal implements it.

    For each stimulus j (all votes of all raters, repeats included) compute the mean
    :math:`\\mu_j`, the population standard deviation :math:`\\sigma_j` (ddof 0) and the kurtosis
    :math:`\\beta_{2j} = m_4 / m_2^2`. With :math:`k = 2` when :math:`2 \\le \\beta_{2j} \\le 4`
    and :math:`k = \\sqrt{20}` otherwise, a vote counts in :math:`P_i` when
    :math:`x \\ge \\mu_j + k\\sigma_j` and in :math:`Q_i` when :math:`x \\le \\mu_j - k\\sigma_j`.
    Rater i is rejected when :math:`(P_i + Q_i)/(J R) > 0.05` and
    :math:`|P_i - Q_i|/(P_i + Q_i) < 0.3`, where J is the number of stimuli and R the largest
    number of repetitions of any rater on any stimulus. If every rater would be rejected, none is.

    Parameters
    ----------
    votes : pandas.DataFrame
        Long vote table; ``kind == "rating"`` votes are used.
    zero_std : {"skip", "sureal"}
        A stimulus on which all votes agree has :math:`\\sigma_j = 0`. sureal then counts every
        vote on it in both P and Q (``x >= mu`` and ``x <= mu``), so a study where raters agree on
        many stimuli (the paper: "NN 1 and HR 5" very consistently) rejects everyone and falls
        back to rejecting no one. ``"skip"`` (default) lets such stimuli count no outlier, which
        is what BT.500's "outside mean +- k std" means; ``"sureal"`` reproduces sureal 0.9.0
        bit for bit (same floating-point order). ``"skip"`` also counts a vote lying exactly on
        mean +- k std (e.g. votes 1,2,3,3,4,5,5,5,5,5: 3.8 - 2(1.4) = 1), where
        sureal's rounding decides.

    Returns
    -------
    pandas.DataFrame
        ``rater, n_votes, bt500_p, bt500_q, bt500_stat1`` ((P+Q)/(JR)), ``bt500_stat2``
        (|P-Q|/(P+Q), NaN when P+Q = 0), ``bt500_rejected``, ``estimator``.

    References
    ----------
    ITU-R BT.500-14 (2019), Annex 1, 2.3.1 (screening for ACR studies).
    Netflix sureal 0.9.0, ``SubjectiveModel._get_opinion_score_3darray_with_preprocessing``
    (``subject_rejection=True``).
    """
    return _bt500(ratings(votes), zero_std)


def _bt500(r: pd.DataFrame, zero_std: str = "skip") -> pd.DataFrame:
    if zero_std not in ("skip", "sureal"):
        raise ValueError(f"zero_std must be 'skip' or 'sureal', got {zero_std!r}")
    c = code(r)
    if zero_std == "sureal":
        hi, lo = _bt500_counts_sureal(r, c)
    else:
        n_e = np.bincount(c.e, minlength=c.n_stimuli).astype(float)
        mu = c.per_stimulus(c.x) / n_e
        d = c.x - mu[c.e]
        m2 = c.per_stimulus(d**2) / n_e
        m4 = c.per_stimulus(d**4) / n_e
        with np.errstate(invalid="ignore", divide="ignore"):
            kurt = m4 / m2**2
        k = np.where((kurt >= 2) & (kurt <= 4), 2.0, np.sqrt(20.0))
        sigma = np.sqrt(m2)
        # A vote exactly on mean +- k*sigma counts, as in exact arithmetic (sureal's rounding
        # can go either way there).
        tol = 1e-9
        keep = (sigma > tol)[c.e]
        hi = (c.x >= (mu + k * sigma)[c.e] - tol) & keep
        lo = (c.x <= (mu - k * sigma)[c.e] + tol) & keep
    p = c.per_rater(hi.astype(float))
    q = c.per_rater(lo.astype(float))
    reps = r.groupby([*STIMULUS, "rater"], observed=True).size().max()
    stat1 = (p + q) / (c.n_stimuli * reps)
    with np.errstate(invalid="ignore", divide="ignore"):
        stat2 = np.abs(p - q) / (p + q)
    rejected = (stat1 > 0.05) & (stat2 < 0.3)
    if rejected.all():
        rejected[:] = False
    return pd.DataFrame(
        {
            "rater": c.raters,
            "n_votes": np.bincount(c.s, minlength=c.n_raters),
            "bt500_p": p.astype(int),
            "bt500_q": q.astype(int),
            "bt500_stat1": stat1,
            "bt500_stat2": stat2,
            "bt500_rejected": rejected,
            "estimator": f"{BT500_VERSION}/zero_std={zero_std}",
        }
    )


def _bt500_counts_sureal(r: pd.DataFrame, c) -> tuple[np.ndarray, np.ndarray]:
    """P/Q indicators computed exactly as sureal 0.9.0 does, floating-point order included."""
    rep = r.assign(_e=c.e, _s=c.s).sort_values(["_e", "_s", "repeat"], kind="stable")
    rep["_r"] = rep.groupby(["_e", "_s"]).cumcount()
    rep = rep.sort_values(["_e", "_r", "_s"], kind="stable")
    x = rep["score"].to_numpy()
    bounds = np.flatnonzero(np.diff(rep["_e"].to_numpy())) + 1
    hi = np.zeros(len(x), dtype=bool)
    lo = np.zeros(len(x), dtype=bool)
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(x)], strict=True):
        xe = x[a:b]
        mu, sigma = np.mean(xe), np.std(xe)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            kurt = stats.kurtosis(xe, fisher=False)
        k = 2.0 if 2 <= kurt <= 4 else np.sqrt(20)
        hi[a:b] = xe >= mu + k * sigma
        lo[a:b] = xe <= mu - k * sigma
    out_hi = np.zeros(len(x), dtype=bool)
    out_lo = np.zeros(len(x), dtype=bool)
    pos = r.index.get_indexer(rep.index)
    out_hi[pos], out_lo[pos] = hi, lo
    return out_hi, out_lo


def p913_bias(votes: pd.DataFrame) -> pd.DataFrame:
    """ITU-T P.913 rater bias and bias-removed MOS.

    The bias of rater i is the mean over the rater's votes of
    :math:`x_{ijr} - \\bar x_j`, where :math:`\\bar x_j` is the plain MOS of stimulus j over all
    raters and repeats. Bias-removed scores are :math:`x_{ijr} - b_i`.

    Returns
    -------
    pandas.DataFrame
        ``rater, n_votes, p913_bias`` (attribute ``attrs["adjusted"]`` is not used; call
        :func:`p913_adjusted` for the bias-removed votes).

    References
    ----------
    ITU-T P.913 (2021), clause 12.4 (subject bias removal); sureal ``BiasremvMosModel`` (BR_MOS).
    """
    return _p913(ratings(votes))[0]


def _p913(r: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    c = code(r)
    n_e = np.bincount(c.e, minlength=c.n_stimuli)
    n_s = np.bincount(c.s, minlength=c.n_raters)
    mos = c.per_stimulus(c.x) / n_e
    bias = c.per_rater(c.x - mos[c.e]) / n_s
    table = pd.DataFrame({"rater": c.raters, "n_votes": n_s, "p913_bias": bias})
    adjusted = r.copy()
    adjusted["score"] = c.x - bias[c.s]
    return table, adjusted


def p913_adjusted(votes: pd.DataFrame) -> pd.DataFrame:
    """The rating votes with each rater's P.913 bias subtracted (scores may leave 1-5)."""
    return _p913(ratings(votes))[1]


def rater_agreement(votes: pd.DataFrame, min_r: float = 0.75) -> pd.DataFrame:
    """Correlation of each rater's votes with the MOS of the other raters.

    A rater's repeated votes on a stimulus are averaged first; the MOS of the others on stimulus j
    is the mean of all other raters' votes on j (leave-one-out). Stimuli rated by no one else are
    left out. Pearson and Spearman correlations are taken over the stimuli the rater rated.

    Parameters
    ----------
    min_r : float
        Flag raters whose Pearson r is below this (P.808 warns below 0.75).

    Returns
    -------
    pandas.DataFrame
        ``rater, n_stimuli, corr_with_others`` (Pearson), ``spearman_with_others``,
        ``low_agreement`` (r < min_r; False when undefined), ``agreement_note``. r is NaN with a note
        when the rater has fewer than 3 stimuli or constant votes, or the others' MOS is constant.

    References
    ----------
    ITU-T P.808 (2021), clause 10 and Appendix; ITU-T P.913 (2021), clause 12.6.
    """
    return _agreement(ratings(votes), min_r)


def _agreement(r: pd.DataFrame, min_r: float = 0.75) -> pd.DataFrame:
    c = code(r)
    tot = c.per_stimulus(c.x)
    cnt = np.bincount(c.e, minlength=c.n_stimuli).astype(float)
    per = (
        pd.DataFrame({"s": c.s, "e": c.e, "x": c.x})
        .groupby(["s", "e"], sort=True)["x"]
        .agg(["sum", "count", "mean"])
        .reset_index()
    )
    others_n = cnt[per["e"]] - per["count"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        per["others"] = (tot[per["e"]] - per["sum"].to_numpy()) / others_n
    per = per[others_n > 0]
    g = per.groupby("s", sort=True)
    per["rx"] = g["mean"].rank(method="average")
    per["ry"] = g["others"].rank(method="average")
    pear = _group_pearson(per, "mean", "others")
    spear = _group_pearson(per, "rx", "ry")
    n = per.groupby("s").size()
    out = pd.DataFrame({"rater": c.raters})
    out["n_stimuli"] = n.reindex(range(c.n_raters), fill_value=0).to_numpy()
    out["corr_with_others"] = pear.reindex(range(c.n_raters)).to_numpy()
    out["spearman_with_others"] = spear.reindex(range(c.n_raters)).to_numpy()
    out["low_agreement"] = (out["corr_with_others"] < min_r).to_numpy()
    note = np.where(
        out["n_stimuli"] < 3,
        "fewer than 3 stimuli shared with others",
        np.where(out["corr_with_others"].isna(), "constant votes: r undefined", ""),
    )
    out.loc[out["n_stimuli"] < 3, ["corr_with_others", "spearman_with_others"]] = np.nan
    out["agreement_note"] = note
    return out


def _group_pearson(df: pd.DataFrame, a: str, b: str) -> pd.Series:
    g = df.groupby("s", sort=True)
    da = df[a] - g[a].transform("mean")
    db = df[b] - g[b].transform("mean")
    t = pd.DataFrame({"s": df["s"], "ab": da * db, "aa": da * da, "bb": db * db})
    sums = t.groupby("s").sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sums["ab"] / np.sqrt(sums["aa"] * sums["bb"])
    r[(sums["aa"] <= 1e-12) | (sums["bb"] <= 1e-12)] = np.nan
    return r.clip(-1.0, 1.0)


FLAG_COLUMNS = {
    "bt500_rejected": "bt500",
    "low_agreement": "low_corr",
    "gold_failed": "gold",
    "straightliner": "straightline",
}


def screen_raters(
    votes: pd.DataFrame,
    min_r: float = 0.75,
    min_var: float = 0.1,
    zero_std: str = "skip",
    p913: pd.DataFrame | None = None,
    retest: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """All per-rater screening statistics in one table (nothing is excluded here).

    Returns
    -------
    pandas.DataFrame
        One row per rater who cast a rating vote: ``rater, n_votes, bt500_p, bt500_q,
        bt500_stat1, bt500_stat2, bt500_rejected, p913_bias, n_stimuli, corr_with_others,
        spearman_with_others, low_agreement, agreement_note, n_gold, gold_pass_rate, gold_failed,
        n_calibration, calibration_mae, n_retest_pairs, retest_mad, retest_r,
        retest_distance_min, retest_distance_median, score_var, n_distinct_scores,
        straightliner, flags`` (";"-joined names of the raised flags among
        bt500, low_corr, gold, straightline), ``flagged``. ``p913`` and ``retest`` take already
        computed :func:`p913_bias` and per-rater :func:`retest_agreement` tables.
    """
    v = validate_votes(votes)
    r = v[v["kind"] == "rating"]
    if r.empty:
        raise VotesError("no votes of kind rating")
    out = _bt500(r, zero_std).drop(columns="estimator")
    bias = p913 if p913 is not None else _p913(r)[0]
    out = out.merge(bias[["rater", "p913_bias"]], on="rater", how="left")
    out = out.merge(_agreement(r, min_r), on="rater", how="left")
    out = out.merge(gold_consistency(v), on="rater", how="left")
    per_retest = retest if retest is not None else retest_agreement(v)[0]
    out = out.merge(per_retest, on="rater", how="left")
    sl = straightlining(r, min_var).drop(columns="n_votes")
    out = out.merge(sl, on="rater", how="left")
    for col in FLAG_COLUMNS:
        out[col] = out[col].fillna(False).astype(bool)
    out["n_gold"] = out["n_gold"].fillna(0).astype(int)
    out["n_calibration"] = out["n_calibration"].fillna(0).astype(int)
    out["n_retest_pairs"] = out["n_retest_pairs"].fillna(0).astype(int)
    flags = pd.DataFrame({name: np.where(out[col], name, "") for col, name in FLAG_COLUMNS.items()})
    out["flags"] = flags.apply(lambda row: ";".join(x for x in row if x), axis=1)
    out["flagged"] = out["flags"] != ""
    return out


def mos_with_and_without(
    votes: pd.DataFrame,
    excluded: Iterable[str],
    by=("dataset", "method"),
    ci: str = "t",
    method_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """MOS of all raters next to the MOS without the ``excluded`` raters.

    Rows in the order of :func:`study.analysis.mos_table` with the same ``method_order``.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, then ``n_all, mos_all, ci95_low_all, ci95_high_all, n_screened,
        mos_screened, ci95_low_screened, ci95_high_screened, mos_change, n_excluded_raters,
        note`` (why a screened value is undefined, e.g. every vote came from excluded raters).
    """
    r = ratings(votes)
    excluded = set(map(str, excluded))
    cols = ["n", "mos", "ci95_low", "ci95_high"]
    allm = summarize(r, by, ci, method_order)[[*by, *cols, "note"]]
    kept = r[~r["rater"].isin(excluded)]
    scr = summarize(kept, by, ci)[[*by, *cols]] if len(kept) else pd.DataFrame(columns=[*by, *cols])
    out = allm.merge(scr, on=list(by), how="left", suffixes=("_all", "_screened"))
    out["n_screened"] = out["n_screened"].fillna(0).astype(int)
    out["mos_change"] = out["mos_screened"] - out["mos_all"]
    out["n_excluded_raters"] = len(excluded)
    out["note"] = np.where(
        out["n_screened"] == 0, "all votes from excluded raters", out["note"].astype(str)
    )
    return out[
        [
            *by,
            *[f"{c}_all" for c in cols],
            *[f"{c}_screened" for c in cols],
            "mos_change",
            "n_excluded_raters",
            "note",
        ]
    ]
