"""One definition of gold misses, straight-lining and retest distance for the live session
and the exported report."""

import json

import numpy as np
import pandas as pd
import pytest

from study.analysis import (
    STRAIGHTLINE_MIN_VOTES,
    VotesError,
    gold_consistency,
    gold_missed,
    is_straightliner,
    paper_design,
    retest_agreement,
    screen_raters,
    session_quality,
    simulate_votes,
    straightlining,
    validate_votes,
    vote_flags,
    write_report,
)
from study.analysis.__main__ import main

MISSER = "r03"


def _old_vote_flags(expected, score, duration_ms, min_view_ms):
    """study.models.session.vote_flags before it moved to study.analysis."""
    flags = []
    if (expected == ">=4" and score < 4) or (expected == "<=2" and score > 2):
        flags.append("gold-miss")
    if duration_ms is not None and min_view_ms and duration_ms < min_view_ms:
        flags.append("too-fast")
    return ",".join(flags)


def _old_session_quality(votes, min_variance, display_checks=()):
    """study.models.session.session_quality before it moved to study.analysis."""
    scores = [s for _, s, kind, *_ in votes if kind == "rating"]
    n = len(scores)
    mean = sum(scores) / n if n else 0.0
    variance = sum((s - mean) ** 2 for s in scores) / (n - 1) if n > 1 else None
    first = {c: s for c, s, kind, *_ in votes if kind == "rating"}
    pairs = [(first[c], s) for c, s, kind, *_ in votes if kind == "retest" and c in first]
    retest_mad = sum(abs(a - b) for a, b in pairs) / len(pairs) if pairs else None
    gold_items = sum(1 for *_, expected in votes if expected)
    gold_misses = sum("gold-miss" in flags for _, _, _, flags, _, _ in votes)
    durations = sorted(d for _, _, _, _, d, _ in votes if d is not None)
    flags = []
    if variance is not None and n >= 10 and variance < min_variance:
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


def session(rows, min_view_ms=1500):
    """(candidate, score, kind, duration_ms, expected) -> session tuples with stored flags."""
    return [(c, s, k, _old_vote_flags(e, s, d, min_view_ms), d, e) for c, s, k, d, e in rows]


@pytest.fixture(scope="module")
def gold_study():
    """A platform export: HR trials expect ">=4", NN trials "<=2"; r3 misses one HR item."""
    design = paper_design()
    design = design[design["image"].isin(["img000", "img001", "img002"])]
    v = simulate_votes(design, n_raters=6, seed=3, retest=4, bad_raters=0)
    v["expected"] = v["method"].map({"hr": ">=4", "nn": "<=2"}).fillna("")
    v.loc[v["method"] == "hr", "score"] = 5
    v.loc[v["method"] == "nn", "score"] = 1
    hr = v.index[(v["rater"] == MISSER) & (v["method"] == "hr") & (v["kind"] == "rating")]
    v.loc[hr[0], "score"] = 2
    v["position"] = v.groupby("rater").cumcount()
    return v


@pytest.fixture(scope="module")
def gold_report(gold_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("gold_report")
    write_report(gold_study, out, plots_enabled=False)
    return out


@pytest.mark.parametrize(
    "expected, score, missed",
    [
        (">=4", 3, True),
        (">=4", 4, False),
        ("<=2", 3, True),
        ("<=2", 2, False),
        (">=3", 2, True),
        ("<= 1", 2, True),
        ("", 1, False),
        (None, 5, False),
        (np.nan, 1, False),
        ("4", 1, False),
        (">=4", None, False),
    ],
)
def test_a_gold_threshold_is_missed_only_outside_its_bound(expected, score, missed):
    assert gold_missed(expected, score) is missed


def test_rating_trials_with_an_expected_threshold_count_as_gold(gold_study):
    g = gold_consistency(gold_study).set_index("rater")
    n_hr_nn = gold_study[gold_study["expected"] != ""].groupby("rater").size()
    assert (g["n_gold"] == n_hr_nn.reindex(g.index)).all() and (g["n_gold"] > 0).all()
    assert g.loc[MISSER, "gold_failed"] and g["gold_failed"].sum() == 1
    assert g.loc[MISSER, "gold_pass_rate"] == pytest.approx(1 - 1 / n_hr_nn[MISSER])
    assert (g["n_calibration"] == 0).all()


def test_retest_trials_count_as_gold_and_calibration_stays_calibration():
    v = pd.DataFrame(
        {
            "rater": ["a", "a", "a", "b"],
            "dataset": "S",
            "image": ["i", "i", "j", "i"],
            "method": ["hr", "hr", "nn", "hr"],
            "score": [5, 3, 2, 3],
            "kind": ["rating", "retest", "calibration", "calibration"],
            "expected": [">=4", ">=4", "<=2", ">=4"],
        }
    )
    g = gold_consistency(v).set_index("rater")
    assert g.loc["a", "n_gold"] == 2 and g.loc["a", "gold_pass_rate"] == 0.5
    assert g.loc["a", "gold_failed"] and not g.loc["b", "gold_failed"]
    assert g.loc["a", "n_calibration"] == 1 and g.loc["b", "calibration_mae"] == 2.0


def test_screen_raters_fails_the_rater_who_missed_a_gold_item(gold_study):
    s = screen_raters(gold_study).set_index("rater")
    assert s.loc[MISSER, "gold_failed"] and "gold" in s.loc[MISSER, "flags"]
    assert (s["n_gold"] > 0).all() and s["gold_failed"].sum() == 1


def test_the_report_counts_gold_items_from_the_expected_column(gold_study, gold_report):
    raters = pd.read_csv(gold_report / "raters.csv").set_index("rater")
    assert (raters["n_gold"] > 0).all()
    assert raters.loc[MISSER, "gold_failed"] and raters["gold_failed"].sum() == 1
    manifest = json.loads((gold_report / "manifest.json").read_text())
    assert manifest["flags"]["gold"] == 1
    assert manifest["n_gold_votes"] == (gold_study["expected"] != "").sum()
    assert manifest["n_gold_misses"] == 1
    assert MISSER in manifest["excluded_in_mos_screened"]
    screened = pd.read_csv(gold_report / "mos_screened.csv")
    assert (screened["n_excluded_raters"] >= 1).all()
    assert (screened["n_screened"] < screened["n_all"]).all()


def test_straight_lining_needs_ten_rating_votes_in_the_session_and_the_report():
    assert STRAIGHTLINE_MIN_VOTES == 10
    nine = [(i, 3, "rating", "", 2000, "") for i in range(9)]
    ten = [(i, 3, "rating", "", 2000, "") for i in range(10)]
    assert "straight-lining" not in session_quality(nine, min_variance=0.1)["flags"]
    assert "straight-lining" in session_quality(ten, min_variance=0.1)["flags"]
    v = pd.DataFrame(
        {
            "rater": ["nine"] * 9 + ["ten"] * 10,
            "dataset": "S",
            "image": [f"i{k}" for k in range(9)] + [f"i{k}" for k in range(10)],
            "method": "m",
            "score": 3,
        }
    )
    s = straightlining(v).set_index("rater")
    assert not s.loc["nine", "straightliner"] and s.loc["ten", "straightliner"]
    assert straightlining(v, min_votes=9).set_index("rater").loc["nine", "straightliner"]


def test_an_undefined_or_large_variance_is_no_straight_lining():
    assert not is_straightliner(1, None, 0.1)
    assert not is_straightliner(12, float("nan"), 0.1)
    assert not is_straightliner(12, 0.5, 0.1)
    assert is_straightliner(12, 0.0, 0.1)
    assert not is_straightliner(5, 0.0, 0.1)


def test_retest_distance_comes_from_the_position_column():
    v = pd.DataFrame(
        {
            "rater": ["a"] * 6 + ["b"] * 4,
            "dataset": "S",
            "image": ["i", "j", "k", "i", "j", "k", "i", "j", "i", "j"],
            "method": "m",
            "score": [3, 4, 2, 3, 5, 2, 4, 4, 4, 3],
            "kind": ["rating"] * 3 + ["retest"] * 3 + ["rating", "rating", "retest", "retest"],
            "position": [0, 1, 2, 5, 3, 9, 0, 1, 2, 5],
        }
    )
    per, overall = retest_agreement(v)
    per = per.set_index("rater")
    assert per.loc["a", "retest_distance_min"] == 2  # j: positions 1 and 3
    assert per.loc["a", "retest_distance_median"] == 5  # distances 5, 2, 7
    assert per.loc["b", "retest_distance_min"] == 2 and per.loc["b", "retest_distance_median"] == 3
    assert overall.loc[0, "distance_min"] == 2 and overall.loc[0, "distance_median"] == 4
    per, overall = retest_agreement(v.drop(columns="position"))
    assert per["retest_distance_min"].isna().all() and per["retest_distance_median"].isna().all()
    assert np.isnan(overall.loc[0, "distance_min"]) and np.isnan(overall.loc[0, "distance_median"])


def test_the_report_writes_retest_distances(gold_study, gold_report):
    raters = pd.read_csv(gold_report / "raters.csv")
    assert {"retest_distance_min", "retest_distance_median"} <= set(raters.columns)
    assert (raters["retest_distance_min"] >= 1).all()
    retest = pd.read_csv(gold_report / "retest.csv")
    assert retest.loc[0, "distance_min"] == raters["retest_distance_min"].min()
    assert retest.columns[-1] == "note"


def test_vote_flags_match_the_old_live_definition():
    cases = [
        (">=4", 3, 900, 1500),
        (">=4", 4, 900, 1500),
        ("<=2", 3, None, 1500),
        ("<=2", 1, 2000, 0),
        ("", 1, 100, 1500),
        ("", 5, 100, None),
        (">=4", 1, 100, 1500),
    ]
    for case in cases:
        assert vote_flags(*case) == _old_vote_flags(*case), case


def test_session_quality_matches_the_old_live_definition():
    checks = [{"fits": False, "went_on_anyway": True}]
    examples = [
        (session([(i, 3, "rating", 2000, "") for i in range(12)]), checks),
        (session([(i, 1 + i % 5, "rating", 2000, "") for i in range(12)]), ()),
        (
            session(
                [
                    (1, 5, "rating", 800, ">=4"),
                    (2, 3, "rating", 2500, "<=2"),
                    (3, 2, "rating", None, ""),
                    (4, 4, "rating", 1600, ">=4"),
                    (1, 2, "retest", 1900, ">=4"),
                    (3, 5, "retest", 2100, ""),
                    (9, 3, "retest", 2100, ""),
                ]
            ),
            (),
        ),
        (session([(1, 4, "rating", None, "")]), ()),
        ([], ()),
    ]
    for votes, display in examples:
        want = _old_session_quality(votes, 0.1, display)
        assert session_quality(votes, 0.1, display) == want


def test_the_schema_accepts_expected_and_position():
    v = validate_votes(
        pd.DataFrame(
            {
                "rater": ["a", "a", "a", "a"],
                "dataset": "S",
                "image": ["i", "j", "k", "l"],
                "method": "m",
                "score": [5, 1, 3, 4],
                "expected": [">=4", " <=2", np.nan, 5.0],
                "position": [0, 1, 2.0, 3],
            }
        )
    )
    assert v["expected"].tolist() == [">=4", "<=2", "", "5"]
    assert v["position"].dtype == "int64" and v["position"].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("expected", ["good", ""], "expected is neither a threshold"),
        ("position", [0, -1], "position is not a non-negative integer in row 1"),
        ("position", [0, None], "position is not a non-negative integer in row 1"),
        ("position", [0, 1.5], "position is not a non-negative integer in row 1"),
    ],
)
def test_the_schema_names_bad_expected_and_position_rows(column, values, message):
    v = pd.DataFrame(
        {"rater": "a", "dataset": "S", "image": ["i", "j"], "method": "m", "score": [3, 4]}
    )
    v[column] = values
    with pytest.raises(VotesError, match=message):
        validate_votes(v)


@pytest.mark.parametrize("extra", [[], ["expected"], ["position"], ["expected", "position"]])
def test_the_command_line_runs_with_or_without_expected_and_position(gold_study, tmp_path, extra):
    cols = ["rater", "dataset", "image", "method", "score", "kind", "repeat", *extra]
    gold_study[cols].to_csv(tmp_path / "votes.csv", index=False)
    args = ["--votes", str(tmp_path / "votes.csv"), "--out", str(tmp_path / "out"), "--no-plots"]
    assert main(args) == 0
    raters = pd.read_csv(tmp_path / "out" / "raters.csv").set_index("rater")
    assert raters.loc[MISSER, "gold_failed"] == ("expected" in extra)
    assert raters["retest_distance_min"].notna().all() == ("position" in extra)


def test_the_retest_wilcoxon_is_scipys_to_the_last_digit():
    """The retest table's signed-rank test takes the direct path where scipy enumerates sign
    flips or approximates; statistic and p must be scipy's own, ties and zeros included."""
    from scipy import stats

    from study.analysis.session_checks import _scipy_wilcoxon

    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(600):
        n = int(rng.integers(1, 120))
        d = rng.integers(-3, 4, n).astype(float)  # 1-5 score differences: ties and zeros
        if trial % 3 == 0:
            d = rng.normal(size=n).round(1)
        if not (d != 0).any():
            continue
        want = stats.wilcoxon(d)
        got = _scipy_wilcoxon(d)
        assert got[0] == pytest.approx(want.statistic, rel=1e-12), (n, d)
        assert got[1] == pytest.approx(want.pvalue, rel=1e-9, abs=1e-15), (n, d)
        checked += 1
    assert checked > 550
