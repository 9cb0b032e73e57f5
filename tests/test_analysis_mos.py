"""MOS tables against scipy's t interval and sureal's MOS model."""

import contextlib
import io
import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from study.analysis import (
    mos_per_stimulus,
    mos_table,
    paper_design,
    simulate_votes,
    to_sureal_dataset,
)


@pytest.fixture(scope="module")
def votes():
    d = paper_design()
    d = d[d["image"].isin(["img000", "img001", "img002"])]
    return simulate_votes(d, n_raters=12, seed=3, missing=0.15, repeats=4)


def test_it_matches_scipy_t_interval(votes):
    m = mos_table(votes)
    r = votes[votes["kind"] == "rating"]
    for _, row in m.iterrows():
        x = r[(r["dataset"] == row["dataset"]) & (r["method"] == row["method"])]["score"].to_numpy()
        lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert row["n"] == len(x)
        assert row["mos"] == pytest.approx(x.mean(), abs=1e-12)
        assert row["std"] == pytest.approx(x.std(ddof=1), abs=1e-12)
        assert row["median"] == np.median(x)
        assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((lo, hi), abs=1e-9)
    assert set(m["ci_method"]) == {"t"}


def test_it_matches_sureal_mos_and_normal_ci(votes):
    pytest.importorskip("sureal")
    from sureal.dataset_reader import RawDatasetReader
    from sureal.subjective_model import MosModel

    reader = RawDatasetReader(types.SimpleNamespace(**to_sureal_dataset(votes)))
    with contextlib.redirect_stdout(io.StringIO()):
        res = MosModel(reader).run_modeling()
    m = mos_per_stimulus(votes, ci="normal")
    np.testing.assert_allclose(m["mos"], res["quality_scores"], atol=1e-12)
    half = (m["ci95_high"] - m["mos"]) / stats.norm.ppf(0.975)
    np.testing.assert_allclose(half, res["quality_scores_std"], atol=1e-12)
    np.testing.assert_allclose(m["std"], res["quality_ambiguity"], atol=1e-12)


def test_it_marks_a_single_vote_undefined():
    v = pd.DataFrame(
        {
            "rater": ["a", "b", "a"],
            "dataset": "S",
            "image": "i",
            "method": ["m", "m", "lonely"],
            "score": [3, 4, 5],
        }
    )
    m = mos_table(v).set_index("method")
    assert m.loc["lonely", "mos"] == 5
    assert np.isnan(m.loc["lonely", "ci95_low"]) and not m.loc["lonely", "defined"]
    assert "undefined" in m.loc["lonely", "note"]
    assert m.loc["m", "defined"] and m.loc["m", "note"] == ""


def test_it_groups_by_any_columns_and_checks_ci(votes):
    m = mos_table(votes, by=("method",), ci="normal")
    assert list(m.columns[:2]) == ["method", "n"]
    with pytest.raises(ValueError, match="ci must be one of"):
        mos_table(votes, ci="bootstrap")


def test_it_ignores_calibration_and_retest_votes():
    v = pd.DataFrame(
        {
            "rater": ["a", "a", "a"],
            "dataset": "S",
            "image": "i",
            "method": "m",
            "score": [3, 1, 5],
            "kind": ["rating", "calibration", "retest"],
        }
    )
    assert mos_table(v)["n"].tolist() == [1]
