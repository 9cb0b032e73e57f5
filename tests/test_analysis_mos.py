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
from study.analysis.crossed import crossed_mean, t_test
from study.analysis.null_studies import null_design


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
    assert set(m["ci_method"]) == {"t (over votes, raters and images fixed)"}


def test_its_general_interval_is_the_crossed_mean_of_the_cells(votes):
    m = mos_table(votes).set_index(["dataset", "method"])
    r = votes[votes["kind"] == "rating"]
    for (ds, method), g in r.groupby(["dataset", "method"]):
        cell = g.groupby(["rater", "image"])["score"].agg(["mean", "size"]).unstack()
        est = crossed_mean(cell["mean"].to_numpy(), cell["size"].fillna(0).to_numpy())
        res = t_test(est)
        row = m.loc[(ds, method)]
        assert est.mean == pytest.approx(row["mos"], abs=1e-12)
        assert row["se_general"] == pytest.approx(float(est.se), rel=1e-12)
        assert row["ci95_low_general"] == pytest.approx(float(res["ci_low"]), rel=1e-12)
        assert row["ci95_high_general"] == pytest.approx(float(res["ci_high"]), rel=1e-12)


def test_only_the_general_interval_covers_the_population_mos():
    """Across simulated studies of the same population (true MOS 3.0), the ITU interval over
    votes misses far more often than 5%: it treats the raters and images as fixed."""
    v = null_design(20, 30, replicates=200, method_image_sd=0.2, method_rater_sd=0.2, seed=6)
    m = mos_table(v)
    general = (m["ci95_low_general"] <= 3.0) & (3.0 <= m["ci95_high_general"])
    itu = (m["ci95_low"] <= 3.0) & (3.0 <= m["ci95_high"])
    assert 0.92 <= general.mean() <= 0.98
    assert itu.mean() < 0.8


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
    assert m.loc["m", "defined"]
    # One image: the ITU interval exists, the one over raters and images cannot.
    assert np.isnan(m.loc["m", "ci95_low_general"]) and "2 images" in m.loc["m", "note"]


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
