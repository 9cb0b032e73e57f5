"""Checks built into a rating session: gold answers, test-retest pairs, straight-lining.

Unlike the panel statistics of :mod:`study.analysis.screening` (BT.500, P.913, agreement with the
other raters), each check here looks at one rater's own votes against what the session design
expects of them (ITU-T P.808's gold questions, retest items and variance check). Every function
reports per rater; :func:`study.analysis.screen_raters` combines them with the panel statistics.

One definition serves both sides: the live session summary (:func:`vote_flags`,
:func:`session_quality`, plain Python over a session's vote tuples, which the Django models
import) and the exported report (:func:`gold_consistency`, :func:`straightlining`) share
:func:`gold_missed` and :func:`is_straightliner`, so the admin and the report agree on who missed
a gold item and who straight-lined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from .paper_tests import signed_rank_method, signed_rank_test
from .schema import STIMULUS, THRESHOLD, ratings, validate_votes

# The paper's calibration anchors: nearest neighbour is "bad" (1), the HR original "excellent" (5).
ANCHORS = {"nn": 1.0, "nearest": 1.0, "nearestneighbour": 1.0, "nearestneighbor": 1.0, "hr": 5.0}
# P.808 judges a straight-liner by the variance over a session; a few equal votes are no pattern.
STRAIGHTLINE_MIN_VOTES = 10


def _norm(name: str) -> str:
    """Lower-case alphanumerics only, so "Nearest-Neighbour" finds its anchor."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _threshold(expected: object) -> tuple[str, float] | None:
    """``(">=", 4.0)`` for ``">=4"``; None for anything that is not a threshold string."""
    if not isinstance(expected, str):
        return None
    m = re.match(THRESHOLD, expected)
    return (m.group(1), float(m.group(2))) if m else None


def gold_missed(expected: object, score: float | None) -> bool:
    """Whether ``score`` misses the gold threshold ``expected``.

    A gold item is a normal trial whose expectation is a threshold string: ``">=4"`` for the HR
    image, ``"<=2"`` for nearest neighbour (any ``">=N"`` or ``"<=N"`` is read the same way). A
    miss is a score below the ``>=`` bound or above the ``<=`` bound. Anything else (``""``,
    None, NaN, a number) is no threshold and never missed; neither is a missing score.
    """
    t = _threshold(expected)
    if t is None or score is None or pd.isna(score):
        return False
    op, bound = t
    return bool(score < bound) if op == ">=" else bool(score > bound)


def is_straightliner(
    n_votes: int,
    variance: float | None,
    min_var: float,
    min_votes: int = STRAIGHTLINE_MIN_VOTES,
) -> bool:
    """Whether ``n_votes`` rating votes of sample variance ``variance`` are straight-lined.

    True when ``variance < min_var`` over at least ``min_votes`` votes (default
    :data:`STRAIGHTLINE_MIN_VOTES`): P.808 applies its variance check to a whole session, and a
    handful of votes can agree by chance. An undefined variance (None or NaN: fewer than two
    votes) is never flagged.
    """
    if variance is None or pd.isna(variance) or n_votes < min_votes:
        return False
    return bool(variance < min_var)


def vote_flags(
    expected: object, score: float | None, duration_ms: float | None, min_view_ms: float | None
) -> str:
    """The flags stored on one vote, comma-joined (``""`` for none).

    ``gold-miss`` when :func:`gold_missed`; ``too-fast`` when the image was viewed for less than
    ``min_view_ms`` (no check when the duration is unknown or ``min_view_ms`` is 0 or None).
    """
    flags = []
    if gold_missed(expected, score):
        flags.append("gold-miss")
    if duration_ms is not None and min_view_ms and duration_ms < min_view_ms:
        flags.append("too-fast")
    return ",".join(flags)


def session_quality(
    votes: Iterable[tuple], min_variance: float, display_checks: Iterable[dict] = ()
) -> dict:
    """Summarise one session's votes for the live admin page (plain Python, no DataFrame).

    Parameters
    ----------
    votes : iterable of tuple
        ``(candidate_id, score, kind, flags, duration_ms, expected)`` per answered trial, kind
        ``"rating"`` or ``"retest"``. The stored ``flags`` are not reread: gold misses are
        recomputed with :func:`gold_missed`, the same rule that wrote them.
    min_variance : float
        Straight-lining threshold on the sample variance of the rating votes.
    display_checks : iterable of dict
        The page's display-size checks; one with ``went_on_anyway`` true raises a flag.

    Returns
    -------
    dict
        ``n`` (rating votes), ``n_answered`` (all votes), ``variance`` (sample variance of the
        rating votes; None with fewer than two), ``gold_items`` (votes whose ``expected`` is a
        threshold, any kind), ``gold_misses``, ``retest_pairs`` (retest votes of a candidate
        with a rating vote), ``retest_mad`` (their mean absolute difference; None without
        pairs), ``median_duration_ms`` (the upper median; None without durations) and
        ``flags``: a list among ``straight-lining`` (:func:`is_straightliner`, so at least
        :data:`STRAIGHTLINE_MIN_VOTES` rating votes), ``gold-miss xN``, ``retest-unreliable``
        (``retest_mad`` above 1) and ``display-too-small``.
    """
    votes = list(votes)
    scores = [s for _, s, kind, *_ in votes if kind == "rating"]
    n = len(scores)
    mean = sum(scores) / n if n else 0.0
    variance = sum((s - mean) ** 2 for s in scores) / (n - 1) if n > 1 else None
    first = {c: s for c, s, kind, *_ in votes if kind == "rating"}
    pairs = [(first[c], s) for c, s, kind, *_ in votes if kind == "retest" and c in first]
    retest_mad = sum(abs(a - b) for a, b in pairs) / len(pairs) if pairs else None
    gold_items = sum(_threshold(expected) is not None for *_, expected in votes)
    gold_misses = sum(gold_missed(expected, s) for _, s, _, _, _, expected in votes)
    durations = sorted(d for _, _, _, _, d, _ in votes if d is not None)
    flags = []
    if is_straightliner(n, variance, min_variance):
        flags.append("straight-lining")
    if gold_misses:
        flags.append(f"gold-miss x{gold_misses}")
    if retest_mad is not None and retest_mad > 1.0:
        flags.append("retest-unreliable")
    if any(check.get("went_on_anyway") for check in display_checks):
        flags.append("display-too-small")
    return {
        "n": n,
        "n_answered": len(votes),
        "variance": variance,
        "gold_items": gold_items,
        "gold_misses": gold_misses,
        "retest_pairs": len(pairs),
        "retest_mad": retest_mad,
        "median_duration_ms": durations[len(durations) // 2] if durations else None,
        "flags": flags,
    }


def gold_votes(votes: pd.DataFrame, tolerance: float = 1.0) -> pd.DataFrame:
    """Every gold and calibration vote, and whether it met its expectation.

    Gold votes are

    * every vote whose ``expected`` holds a threshold string (``">=4"``, ``"<=2"``), whatever
      its kind except calibration: the platform's gold items are normal ``rating`` or ``retest``
      trials of the HR and nearest-neighbour images. It passes unless :func:`gold_missed`.
    * ``kind == "gold"`` votes without a threshold, expecting the number in ``expected``, else
      the paper's anchor of their method (NN/nearest 1, HR 5; other methods are not counted).
      It passes when :math:`|x - expected| \\le` ``tolerance`` (P.808 accepts +-1).

    ``kind == "calibration"`` votes take their expected score the second way.

    Returns
    -------
    pandas.DataFrame
        ``rater`` (str), ``role`` (``"gold"`` or ``"calibration"``), ``error`` (absolute error;
        NaN for threshold items), ``passed``; one row per such vote, in input order.
    """
    v = validate_votes(votes)
    exp = v["expected"] if "expected" in v.columns else pd.Series("", index=v.index)
    parsed = {e: _threshold(e) for e in exp.unique()}
    op = exp.map({e: t[0] for e, t in parsed.items() if t})
    bound = exp.map({e: t[1] for e, t in parsed.items() if t}).astype(float)
    is_cal = (v["kind"] == "calibration").to_numpy()
    is_thr = op.notna().to_numpy() & ~is_cal
    missed = np.where(op == ">=", v["score"] < bound, v["score"] > bound)
    thr = pd.DataFrame({"rater": v["rater"], "role": "gold", "error": np.nan, "passed": ~missed})
    old = v[((v["kind"] == "gold").to_numpy() & ~is_thr) | is_cal]
    anchor = old["method"].astype(str).map(lambda m: ANCHORS.get(_norm(m), np.nan))
    expected = pd.to_numeric(exp.loc[old.index], errors="coerce").fillna(anchor)
    error = (old["score"] - expected).abs()
    old = pd.DataFrame(
        {
            "rater": old["rater"],
            "role": np.where(old["kind"] == "gold", "gold", "calibration"),
            "error": error,
            "passed": error <= tolerance + 1e-12,
        }
    )[expected.notna()]
    out = pd.concat([thr[is_thr], old]).sort_index()
    return out.astype({"rater": str, "passed": bool}).reset_index(drop=True)


def gold_consistency(
    votes: pd.DataFrame, tolerance: float = 1.0, min_pass: float = 1.0
) -> pd.DataFrame:
    """Agreement of each rater with the expected answers of gold and calibration items.

    Which votes count is :func:`gold_votes`'s rule: every vote whose ``expected`` column holds a
    threshold (``">=4"`` for HR, ``"<=2"`` for nearest neighbour; rating and retest trials
    alike), judged by :func:`gold_missed`; and ``kind == "gold"`` votes against a numeric
    ``expected`` or, without one, the paper's anchors (a method named NN/nearest expects 1, HR
    expects 5), passing when :math:`|x - expected| \\le` tolerance (P.808 accepts +-1).
    Calibration votes use the second rule and are never flagged.

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
    sel = gold_votes(v, tolerance)
    gold = sel[sel["role"] == "gold"].groupby("rater")["passed"].agg(["size", "mean"])
    cal = sel[sel["role"] == "calibration"].groupby("rater")["error"].agg(["size", "mean"])
    out = raters.set_index("rater")
    out["n_gold"] = gold["size"].reindex(out.index, fill_value=0)
    out["gold_pass_rate"] = gold["mean"].reindex(out.index)
    out["gold_failed"] = (out["gold_pass_rate"] < min_pass).fillna(False).astype(bool)
    out["n_calibration"] = cal["size"].reindex(out.index, fill_value=0)
    out["calibration_mae"] = cal["mean"].reindex(out.index)
    return out.reset_index()


def _retest_pairs(v: pd.DataFrame) -> pd.DataFrame:
    """Each later vote of a rater on a stimulus next to that rater's first rating vote on it.

    ``distance`` is the number of positions between the two showings (NaN without a
    ``position`` column).
    """
    sel = v[v["kind"].isin(["rating", "retest"])]
    key = [*STIMULUS, "rater"]
    cols = [*key, "score"] + (["position"] if "position" in v.columns else [])
    first_rating = sel[sel["kind"] == "rating"].sort_values("repeat", kind="stable")
    test = first_rating.groupby(key, sort=False, observed=True).head(1)
    rest = sel.drop(index=test.index)
    later = rest[(rest["kind"] == "retest") | (rest["kind"] == "rating")]
    pairs = later[cols].merge(test[cols], on=key, suffixes=("_retest", "_test"), how="inner")
    if "position" in v.columns:
        pairs["distance"] = (pairs["position_retest"] - pairs["position_test"]).abs()
    else:
        pairs["distance"] = np.nan
    return pairs


def retest_agreement(votes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-retest agreement per rater and overall (the paper's pilot check).

    A pair is a rater's first ``rating`` vote on a stimulus (lowest ``repeat``) and any later vote
    of that rater on the same stimulus: ``kind == "retest"`` or a ``rating`` vote with a higher
    repeat. With a ``position`` column (the trial's 0-based place in the rater's session) a
    pair's distance is the absolute difference of the two positions (1: shown back to back);
    without one the distance columns are NaN.

    Returns
    -------
    per_rater : pandas.DataFrame
        ``rater, n_retest_pairs, retest_mad`` (mean absolute difference), ``retest_r`` (Pearson;
        NaN with fewer than 3 pairs or constant votes), ``retest_distance_min,
        retest_distance_median`` (positions between a retest vote and its first showing).
    overall : pandas.DataFrame
        One row: ``n_pairs, n_raters, mean_diff`` (retest - test), ``mad, exact_agreement,
        pearson_r, wilcoxon_statistic, wilcoxon_p`` (two-sided signed-rank test of a systematic
        difference, zero differences dropped), ``distance_min, distance_median``, ``note``.
    """
    v = validate_votes(votes)
    pairs = _retest_pairs(v)
    raters = pd.DataFrame({"rater": np.sort(v["rater"].unique().astype(str))})
    pairs["d"] = pairs["score_retest"] - pairs["score_test"]
    rows = []
    for rater, g in pairs.groupby("rater", sort=True, observed=True):
        r = _pearson_or_nan(g["score_test"].to_numpy(), g["score_retest"].to_numpy())
        dist = g["distance"]
        rows.append((str(rater), len(g), g["d"].abs().mean(), r, dist.min(), dist.median()))
    per = pd.DataFrame(
        rows,
        columns=[
            "rater",
            "n_retest_pairs",
            "retest_mad",
            "retest_r",
            "retest_distance_min",
            "retest_distance_median",
        ],
    )
    per = raters.merge(per, on="rater", how="left")
    per["n_retest_pairs"] = per["n_retest_pairs"].fillna(0).astype(int)
    return per, pd.DataFrame([_retest_overall(pairs)])


def _retest_overall(pairs: pd.DataFrame) -> dict:
    """The one-row summary of :func:`retest_agreement` over every pair."""
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
        "distance_min": pairs["distance"].min() if n else np.nan,
        "distance_median": pairs["distance"].median() if n else np.nan,
        "note": "",
    }
    if n == 0:
        overall["note"] = "no retest votes"
    elif (pairs["d"] != 0).sum() == 0:
        overall["note"] = "all retest votes equal their test votes: no difference to test"
        overall["wilcoxon_p"] = 1.0
    else:
        stat, p = _scipy_wilcoxon((pairs["score_retest"] - pairs["score_test"]).to_numpy(float))
        overall["wilcoxon_statistic"], overall["wilcoxon_p"] = stat, p
    return overall


def _scipy_wilcoxon(d: np.ndarray) -> tuple[float, float]:
    """``scipy.stats.wilcoxon(d)`` with its defaults, statistic and p: where scipy enumerates
    sign flips through its generic permutation test (13 pairs or fewer with ties: 25-50 ms at
    a paper-size report's handful of retest pairs) or takes the normal approximation (over 50
    pairs), :func:`.paper_tests.signed_rank_test` gives the same numbers directly."""
    if signed_rank_method(d).startswith("sign-flip permutation"):  # there the two differ
        w = stats.wilcoxon(d)
        return float(w.statistic), float(w.pvalue)
    return signed_rank_test(d)


def _pearson_or_nan(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r, NaN with fewer than 3 pairs or a constant side."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    da, db = a - a.mean(), b - b.mean()
    return float(np.clip(np.dot(da, db) / np.sqrt(np.dot(da, da) * np.dot(db, db)), -1.0, 1.0))


def straightlining(
    votes: pd.DataFrame, min_var: float = 0.1, min_votes: int = STRAIGHTLINE_MIN_VOTES
) -> pd.DataFrame:
    """Raters whose rating votes barely vary (P.808's straight-liner check).

    A rater is flagged by :func:`is_straightliner`: variance below ``min_var`` over at least
    ``min_votes`` rating votes (P.808 applies the check to a whole session), so a rater with
    fewer than ``min_votes`` rating votes is never flagged. The live session page uses the same
    rule.

    Returns
    -------
    pandas.DataFrame
        ``rater, n_votes, score_var`` (sample variance, ddof 1; NaN with one vote),
        ``n_distinct_scores, straightliner``.
    """
    r = ratings(votes)
    g = r.groupby("rater", sort=True)["score"]
    out = g.agg(n_votes="size", score_var="var", n_distinct_scores="nunique").reset_index()
    flagged = [
        is_straightliner(n, var, min_var, min_votes)
        for n, var in zip(out["n_votes"], out["score_var"], strict=True)
    ]
    out["straightliner"] = np.array(flagged, dtype=bool)
    return out
