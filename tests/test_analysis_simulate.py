"""Simulated paper-profile raters."""

import numpy as np
import pandas as pd
import pytest

from study.analysis import mos_table, paper_design, simulate_votes, validate_votes
from study.analysis.crossed import crossed_mean
from study.analysis.null_studies import null_design, null_scores
from study.analysis.simulate import (
    expected_vote,
    known_profile,
    latent_for,
    paper_mos,
    unknown_methods,
)


def test_it_builds_the_papers_design():
    d = paper_design()
    assert len(d) == 1128
    assert d.groupby("dataset")["method"].nunique().to_dict() == {
        "BSD100": 9,
        "Set14": 12,
        "Set5": 12,
    }


def test_it_votes_around_the_published_mos():
    v = simulate_votes(paper_design(), n_raters=200, seed=0, bad_raters=0)
    m = mos_table(v)
    m["paper"] = [paper_mos(d, x) for d, x in zip(m["dataset"], m["method"], strict=True)]
    # Large panel, no bad raters: within the sampling spread of image and rater effects.
    assert (m["mos"] - m["paper"]).abs().max() < 0.35
    assert np.corrcoef(m["mos"], m["paper"])[0, 1] > 0.98


def test_it_reproduces_the_papers_ordering_with_bad_raters():
    v = simulate_votes(paper_design(), seed=7)
    assert len(v) == 26 * 1128
    m = mos_table(v).set_index(["dataset", "method"])["mos"]
    for ds in ("Set5", "Set14", "BSD100"):
        g = m.loc[ds]
        assert g.idxmax() == "hr"
        assert g.drop("hr").idxmax().startswith("srgan")
        assert g.idxmin() == "nn"


def test_it_is_deterministic_and_valid():
    d = paper_design().head(50)
    a = simulate_votes(d, n_raters=5, seed=3, retest=4, repeats=2, missing=0.1)
    b = simulate_votes(d, n_raters=5, seed=3, retest=4, repeats=2, missing=0.1)
    pd.testing.assert_frame_equal(a, b)
    v = validate_votes(a)
    assert set(v["kind"]) == {"rating", "retest"}
    assert v["score"].between(1, 5).all()
    assert a.groupby("rater")["simulated_as"].first().tolist() == [
        "good",
        "good",
        "good",
        "random",
        "straight",
    ]


def test_it_matches_names_loosely_and_invents_no_mos_for_unknown_methods():
    assert paper_mos("set5", "SRGAN") == 3.58
    assert paper_mos("B100", "Nearest") == 1.11
    assert paper_mos("Set14", "SRResNet") == 2.98
    assert paper_mos("Urban100", "bicubic") == pytest.approx(np.mean([1.97, 1.80, 1.47]))
    assert np.isnan(paper_mos("Set5", "my-new-net"))
    assert known_profile("SRGAN") and not known_profile("my-new-net")


def test_it_flags_the_votes_of_a_method_without_a_profile():
    d = paper_design().head(24).assign(method=lambda t: t["method"].replace({"drcn": "mynet"}))
    assert unknown_methods(d) == ["mynet"]
    v = simulate_votes(d, n_raters=4, seed=1, bad_raters=0)
    flagged = v.groupby("method")["simulated_unknown"].agg(["all", "any"])
    assert flagged.loc["mynet", "all"] and not flagged.drop("mynet")["any"].any()
    assert v.loc[v["method"] == "mynet", "paper_mos"].isna().all()
    with pytest.raises(ValueError, match="mynet"):
        simulate_votes(d, n_raters=4, unknown="raise")


def test_without_interactions_it_votes_as_before_and_with_them_raters_disagree():
    d = paper_design()
    d = d[d["dataset"] == "BSD100"]
    plain = simulate_votes(d, n_raters=8, seed=2, bad_raters=0)
    same = simulate_votes(d, n_raters=8, seed=2, bad_raters=0, method_image_sd=0.0)
    pd.testing.assert_frame_equal(plain, same)
    mixed = simulate_votes(d, n_raters=8, seed=2, bad_raters=0, method_image_sd=0.6,
                           method_rater_sd=0.6)  # fmt: skip

    def spread(v):  # sd over raters of (rater's mean on srgan - on srresnet)
        per = v.groupby(["rater", "method"])["score"].mean().unstack()
        return (per["srgan-vgg54"] - per["srresnet-mse"]).std()

    assert spread(mixed) > 1.5 * spread(plain)


def test_its_null_design_has_equal_methods_and_the_requested_gaps():
    s = null_scores(20, 30, replicates=40, n_methods=3, missing=0.2, seed=3)
    assert s.shape == (40, 20, 30, 3)
    assert np.isnan(s).mean() == pytest.approx(0.2, abs=0.01)
    means = np.nanmean(s, axis=(0, 1, 2))
    assert np.ptp(means) < 0.05 and means.mean() == pytest.approx(3.0, abs=0.1)
    v = null_design(5, 4, replicates=2, seed=3)
    assert set(v["dataset"]) == {"null000", "null001"} and set(v["method"]) == {"m1", "m2"}
    assert len(validate_votes(v)) == len(v)
    again = null_scores(5, 4, replicates=2, seed=3)
    assert v["score"].sum() == np.nansum(again)


def test_its_interaction_sizes_are_recovered_from_the_differences():
    s = null_scores(40, 100, replicates=30, method_image_sd=0.4, method_rater_sd=0.2,
                    missing=0.0, seed=4)  # fmt: skip
    est = crossed_mean(s[..., 0] - s[..., 1])
    # The difference of two methods carries twice each interaction's variance; rounding to the
    # 1-5 scale shrinks latent spreads a little, hence the tolerances.
    assert np.sqrt(est.var_image.mean()) == pytest.approx(0.4 * np.sqrt(2), rel=0.2)
    assert np.sqrt(est.var_rater.mean()) == pytest.approx(0.2 * np.sqrt(2), rel=0.3)


def test_it_inverts_the_discretised_vote():
    for target in (1.11, 2.5, 4.46):
        assert expected_vote(latent_for(target, 0.7), 0.7) == pytest.approx(target, abs=1e-8)


def test_it_rejects_bad_arguments():
    with pytest.raises(ValueError, match="exceed"):
        simulate_votes(paper_design().head(5), n_raters=2, bad_raters=3)
    with pytest.raises(ValueError, match="profile"):
        simulate_votes(paper_design().head(5), profile="ideal")
