"""Rater screening against sureal (BT.500, P.913) and scipy (agreement)."""

import contextlib
import io
import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from study.analysis import (
    bt500_screening,
    gold_consistency,
    mos_with_and_without,
    p913_adjusted,
    p913_bias,
    paper_design,
    rater_agreement,
    retest_agreement,
    screen_raters,
    simulate_votes,
    straightlining,
    to_sureal_dataset,
)
from tests.conftest import synthetic_votes


def synthetic(seed, n_raters=14, missing=0.2, repeats=3, bad=None, profile="noisy"):
    return synthetic_votes(
        seed,
        n_images=4,
        profile=profile,
        n_raters=n_raters,
        missing=missing,
        repeats=repeats,
        bad_raters=bad if bad is not None else 3,
    )


DATASETS = [
    synthetic(0),
    synthetic(1, missing=0.0, repeats=0),
    synthetic(2, n_raters=20, missing=0.35, repeats=6, bad={"random": 4}),
    synthetic(3, bad=0),
]


def sureal_run(model_name, v, **kw):
    pytest.importorskip("sureal")
    from sureal import subjective_model
    from sureal.dataset_reader import RawDatasetReader

    reader = RawDatasetReader(types.SimpleNamespace(**to_sureal_dataset(v)))
    with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
        return getattr(subjective_model, model_name)(reader).run_modeling(**kw)


@pytest.mark.parametrize("v", DATASETS)
def test_it_matches_sureal_bt500(v):
    res = sureal_run("SubjrejMosModel", v)
    ours = bt500_screening(v, zero_std="sureal")
    assert ours["bt500_rejected"].tolist() == list(res["observer_rejected"])
    np.testing.assert_allclose(ours["bt500_stat1"], res["observer_rejected_1st_stats"], atol=1e-12)
    np.testing.assert_allclose(ours["bt500_stat2"], res["observer_rejected_2nd_stats"], atol=1e-12)


def test_it_rejects_random_raters_somewhere():
    # Sanity of the reference comparison: at least one dataset must exercise a rejection.
    rejected = [bt500_screening(v, zero_std="sureal")["bt500_rejected"].sum() for v in DATASETS]
    assert max(rejected) > 0


def test_it_skips_unanimous_stimuli_by_default():
    unanimous = synthetic(2, n_raters=20, missing=0.35, repeats=6, bad={"random": 4})
    # Make one stimulus unanimous: sureal counts every vote on it as an outlier on both sides.
    key = (
        (unanimous["image"] == "img000")
        & (unanimous["method"] == "hr")
        & (unanimous["dataset"] == "Set5")
    )
    unanimous.loc[key, "score"] = 5
    skip = bt500_screening(unanimous).set_index("rater")
    sur = bt500_screening(unanimous, zero_std="sureal").set_index("rater")
    n_votes = unanimous[key & (unanimous["kind"] == "rating")].groupby("rater").size()
    diff = (sur["bt500_p"] - skip["bt500_p"]).loc[n_votes.index]
    assert (diff == n_votes).all()
    assert ((sur["bt500_q"] - skip["bt500_q"]).loc[n_votes.index] == n_votes).all()


@pytest.mark.parametrize("v", DATASETS)
def test_it_matches_sureal_p913_bias_removal(v):
    res = sureal_run("BiasremvMosModel", v)
    np.testing.assert_allclose(p913_bias(v)["p913_bias"], res["observer_bias"], atol=1e-12)
    adj = p913_adjusted(v).groupby(["dataset", "image", "method"])["score"].mean()
    np.testing.assert_allclose(adj.to_numpy(), res["quality_scores"], atol=1e-12)


@pytest.mark.parametrize("v", DATASETS)
def test_it_matches_scipy_agreement_with_others(v):
    ours = rater_agreement(v).set_index("rater")
    r = v[v["kind"] == "rating"]
    stim = ["dataset", "image", "method"]
    for rater in ours.index:
        mine = r[r["rater"] == rater].groupby(stim)["score"].mean()
        others = r[r["rater"] != rater].groupby(stim)["score"].mean()
        x, y = mine.align(others, join="inner")
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            assert np.isnan(ours.loc[rater, "corr_with_others"])
            assert ours.loc[rater, "agreement_note"]
            continue
        assert ours.loc[rater, "n_stimuli"] == len(x)
        assert ours.loc[rater, "corr_with_others"] == pytest.approx(
            stats.pearsonr(x, y)[0], abs=1e-9
        )
        assert ours.loc[rater, "spearman_with_others"] == pytest.approx(
            stats.spearmanr(x, y)[0], abs=1e-9
        )


def test_it_flags_the_simulated_bad_raters():
    v = simulate_votes(paper_design(), seed=5, bad_raters={"random": 2, "straight": 1})
    s = screen_raters(v).set_index("rater")
    truth = v.groupby("rater")["simulated_as"].first()
    assert s.loc[truth[truth == "straight"].index, "straightliner"].all()
    assert s.loc[truth[truth != "good"].index, "flagged"].all()
    assert not s.loc[truth[truth == "good"].index, "flagged"].any()
    assert set(s.loc[truth[truth == "random"].index, "flags"].str.split(";").sum()) >= {"low_corr"}


def test_it_reports_mos_with_and_without_flagged_raters():
    v = simulate_votes(paper_design(), seed=5, bad_raters={"random": 2, "straight": 1})
    m = mos_with_and_without(v, ["r24", "r25", "r26"])
    hr = m[(m["dataset"] == "BSD100") & (m["method"] == "hr")].iloc[0]
    assert hr["n_all"] == 2600 and hr["n_screened"] == 2300
    assert hr["mos_screened"] > hr["mos_all"]  # random and straight raters pull HR down
    good = v[~v["rater"].isin(["r24", "r25", "r26"])]
    want = good[(good["dataset"] == "BSD100") & (good["method"] == "hr")]["score"].mean()
    assert hr["mos_screened"] == pytest.approx(want)


def test_it_checks_gold_against_expected_and_anchors():
    v = pd.DataFrame(
        {
            "rater": ["a", "a", "b", "b", "a", "b"],
            "dataset": "cal",
            "image": "x",
            "method": ["nn", "hr", "nn", "hr", "bicubic", "nn"],
            "score": [1, 5, 4, 5, 3, 2],
            "kind": ["gold", "gold", "gold", "gold", "rating", "calibration"],
        }
    )
    g = gold_consistency(v).set_index("rater")
    assert g.loc["a", "gold_pass_rate"] == 1.0 and not g.loc["a", "gold_failed"]
    assert g.loc["b", "gold_pass_rate"] == 0.5 and g.loc["b", "gold_failed"]
    assert g.loc["b", "calibration_mae"] == 1.0 and g.loc["a", "n_calibration"] == 0
    v["expected"] = [2, 5, 4, 5, None, None]
    g = gold_consistency(v).set_index("rater")
    assert g.loc["a", "gold_pass_rate"] == 1.0 and g.loc["b", "gold_pass_rate"] == 1.0


def test_it_measures_test_retest_agreement():
    v = simulate_votes(paper_design(), n_raters=10, seed=2, retest=10, bad_raters=0)
    per, overall = retest_agreement(v)
    assert overall.loc[0, "n_pairs"] == 100 and overall.loc[0, "n_raters"] == 10
    assert (per["n_retest_pairs"] == 10).all()
    pairs = v[v["kind"] == "retest"].merge(
        v[v["kind"] == "rating"], on=["rater", "dataset", "image", "method"], suffixes=("_re", "")
    )
    w = stats.wilcoxon(pairs["score_re"], pairs["score"])
    assert overall.loc[0, "wilcoxon_p"] == pytest.approx(w.pvalue, abs=1e-12)
    assert overall.loc[0, "pearson_r"] == pytest.approx(
        stats.pearsonr(pairs["score"], pairs["score_re"])[0], abs=1e-12
    )
    # Same panel, same noise: no systematic difference (the paper's pilot finding).
    assert overall.loc[0, "wilcoxon_p"] > 0.01 and overall.loc[0, "pearson_r"] > 0.7


def test_it_marks_retest_undefined_without_retest_votes():
    per, overall = retest_agreement(DATASETS[1])
    assert overall.loc[0, "n_pairs"] == 0 and overall.loc[0, "note"] == "no retest votes"
    assert (per["n_retest_pairs"] == 0).all()


def test_it_flags_straightliners_by_variance():
    # Ten votes each: a straight-liner needs STRAIGHTLINE_MIN_VOTES rating votes.
    varied = [1, 5, 2, 4, 3, 1, 5, 2, 4, 3]
    v = pd.DataFrame(
        {
            "rater": ["a"] * 10 + ["b"] * 10,
            "dataset": "S",
            "image": list("opqrstwxyz") * 2,
            "method": "m",
            "score": [3] * 10 + varied,
        }
    )
    s = straightlining(v).set_index("rater")
    assert s.loc["a", "straightliner"] and not s.loc["b", "straightliner"]
    assert s.loc["b", "score_var"] == pytest.approx(np.var(varied, ddof=1))
