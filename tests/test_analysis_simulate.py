"""Simulated paper-profile raters."""

import numpy as np
import pandas as pd
import pytest

from study.analysis import mos_table, paper_design, simulate_votes, validate_votes
from study.analysis.simulate import DEFAULT_MOS, expected_vote, latent_for, paper_mos


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


def test_it_matches_names_loosely_and_defaults_unknown_methods():
    assert paper_mos("set5", "SRGAN") == 3.58
    assert paper_mos("B100", "Nearest") == 1.11
    assert paper_mos("Set14", "SRResNet") == 2.98
    assert paper_mos("Urban100", "bicubic") == pytest.approx(np.mean([1.97, 1.80, 1.47]))
    assert paper_mos("Set5", "my-new-net") == DEFAULT_MOS


def test_it_inverts_the_discretised_vote():
    for target in (1.11, 2.5, 4.46):
        assert expected_vote(latent_for(target, 0.7), 0.7) == pytest.approx(target, abs=1e-8)


def test_it_rejects_bad_arguments():
    with pytest.raises(ValueError, match="exceed"):
        simulate_votes(paper_design().head(5), n_raters=2, bad_raters=3)
    with pytest.raises(ValueError, match="profile"):
        simulate_votes(paper_design().head(5), profile="ideal")
