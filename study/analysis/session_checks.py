"""Checks built into a rating session: gold answers, test-retest pairs, straight-lining.

Unlike the panel statistics of :mod:`study.analysis.screening` (BT.500, P.913, agreement with the
other raters), each check here looks at one rater's own votes against what the session design
expects of them (ITU-T P.808's gold questions, retest items and variance check). Every function
reports per rater; :func:`study.analysis.screen_raters` combines them with the panel statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .schema import STIMULUS, ratings, validate_votes

# The paper's calibration anchors: nearest neighbour is "bad" (1), the HR original "excellent" (5).
ANCHORS = {"nn": 1.0, "nearest": 1.0, "nearestneighbour": 1.0, "nearestneighbor": 1.0, "hr": 5.0}


def _norm(name: str) -> str:
    """Lower-case alphanumerics only, so "Nearest-Neighbour" finds its anchor."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def gold_consistency(
    votes: pd.DataFrame, tolerance: float = 1.0, min_pass: float = 1.0
) -> pd.DataFrame:
    """Agreement of each rater with the expected answers of gold and calibration items.

    The expected score comes from an ``expected`` column when present, else from the paper's
    anchors: a method named NN/nearest expects 1, HR expects 5; other items have no expected
    score and are not counted. A gold answer passes when :math:`|x - expected| \\le` tolerance
    (P.808 accepts +-1).

    Returns
    -------
    pandas.DataFrame
        ``rater, n_gold, gold_pass_rate, gold_failed`` (pass rate below ``min_pass``),
        ``n_calibration, calibration_mae`` (mean absolute error on calibration items; reported,
        never flagged: raters are still learning the scale there). NaN and False for raters
        without such items.
    """
    v = validate_votes(votes)
    raters = pd.DataFrame({"rater": np.sort(v["rater"].unique().astype(str))})
    sel = v[v["kind"].isin(["gold", "calibration"])].copy()
    if "expected" in sel.columns:
        exp = pd.to_numeric(sel["expected"], errors="coerce")
    else:
        exp = pd.Series(np.nan, index=sel.index)
    anchor = sel["method"].astype(str).map(lambda m: ANCHORS.get(_norm(m), np.nan))
    sel["expected_"] = exp.fillna(anchor)
    sel = sel[sel["expected_"].notna()]
    sel["err"] = (sel["score"] - sel["expected_"]).abs()
    sel["pass"] = sel["err"] <= tolerance + 1e-12
    gold = sel[sel["kind"] == "gold"].groupby("rater")["pass"].agg(["size", "mean"])
    cal = sel[sel["kind"] == "calibration"].groupby("rater")["err"].agg(["size", "mean"])
    out = raters.set_index("rater")
    out["n_gold"] = gold["size"].reindex(out.index, fill_value=0)
    out["gold_pass_rate"] = gold["mean"].reindex(out.index)
    out["gold_failed"] = (out["gold_pass_rate"] < min_pass).fillna(False).astype(bool)
    out["n_calibration"] = cal["size"].reindex(out.index, fill_value=0)
    out["calibration_mae"] = cal["mean"].reindex(out.index)
    return out.reset_index()


def _retest_pairs(v: pd.DataFrame) -> pd.DataFrame:
    """Each later vote of a rater on a stimulus next to that rater's first rating vote on it."""
    sel = v[v["kind"].isin(["rating", "retest"])]
    key = [*STIMULUS, "rater"]
    first_rating = sel[sel["kind"] == "rating"].sort_values("repeat", kind="stable")
    test = first_rating.groupby(key, sort=False, observed=True).head(1)
    rest = sel.drop(index=test.index)
    later = rest[(rest["kind"] == "retest") | (rest["kind"] == "rating")]
    pairs = later[key + ["score"]].merge(
        test[key + ["score"]], on=key, suffixes=("_retest", "_test"), how="inner"
    )
    return pairs


def retest_agreement(votes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-retest agreement per rater and overall (the paper's pilot check).

    A pair is a rater's first ``rating`` vote on a stimulus (lowest ``repeat``) and any later vote
    of that rater on the same stimulus: ``kind == "retest"`` or a ``rating`` vote with a higher
    repeat.

    Returns
    -------
    per_rater : pandas.DataFrame
        ``rater, n_retest_pairs, retest_mad`` (mean absolute difference), ``retest_r`` (Pearson;
        NaN with fewer than 3 pairs or constant votes).
    overall : pandas.DataFrame
        One row: ``n_pairs, n_raters, mean_diff`` (retest - test), ``mad, exact_agreement,
        pearson_r, wilcoxon_statistic, wilcoxon_p`` (two-sided signed-rank test of a systematic
        difference, zero differences dropped), ``note``.
    """
    v = validate_votes(votes)
    pairs = _retest_pairs(v)
    raters = pd.DataFrame({"rater": np.sort(v["rater"].unique().astype(str))})
    pairs["d"] = pairs["score_retest"] - pairs["score_test"]
    rows = []
    for rater, g in pairs.groupby("rater", sort=True):
        r = _pearson_or_nan(g["score_test"].to_numpy(), g["score_retest"].to_numpy())
        rows.append((rater, len(g), g["d"].abs().mean(), r))
    per = pd.DataFrame(rows, columns=["rater", "n_retest_pairs", "retest_mad", "retest_r"])
    per = raters.merge(per, on="rater", how="left")
    per["n_retest_pairs"] = per["n_retest_pairs"].fillna(0).astype(int)
    n = len(pairs)
    overall = {
        "n_pairs": n,
        "n_raters": pairs["rater"].nunique(),
        "mean_diff": pairs["d"].mean() if n else np.nan,
        "mad": pairs["d"].abs().mean() if n else np.nan,
        "exact_agreement": (pairs["d"] == 0).mean() if n else np.nan,
        "pearson_r": _pearson_or_nan(
            pairs["score_test"].to_numpy(), pairs["score_retest"].to_numpy()
        ),
        "wilcoxon_statistic": np.nan,
        "wilcoxon_p": np.nan,
        "note": "",
    }
    if n == 0:
        overall["note"] = "no retest votes"
    elif (pairs["d"] != 0).sum() == 0:
        overall["note"] = "all retest votes equal their test votes: no difference to test"
        overall["wilcoxon_p"] = 1.0
    else:
        w = stats.wilcoxon(pairs["score_retest"], pairs["score_test"])
        overall["wilcoxon_statistic"] = float(w.statistic)
        overall["wilcoxon_p"] = float(w.pvalue)
    return per, pd.DataFrame([overall])


def _pearson_or_nan(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r, NaN with fewer than 3 pairs or a constant side."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    da, db = a - a.mean(), b - b.mean()
    return float(np.clip(np.dot(da, db) / np.sqrt(np.dot(da, da) * np.dot(db, db)), -1.0, 1.0))


def straightlining(votes: pd.DataFrame, min_var: float = 0.1) -> pd.DataFrame:
    """Raters whose rating votes barely vary (P.808's straight-liner check).

    Returns
    -------
    pandas.DataFrame
        ``rater, n_votes, score_var`` (sample variance, ddof 1; NaN with one vote),
        ``n_distinct_scores, straightliner`` (variance below ``min_var``, default 0.1).
    """
    r = ratings(votes)
    g = r.groupby("rater", sort=True)["score"]
    out = g.agg(n_votes="size", score_var="var", n_distinct_scores="nunique").reset_index()
    out["straightliner"] = (out["score_var"] < min_var).fillna(False).astype(bool)
    return out
