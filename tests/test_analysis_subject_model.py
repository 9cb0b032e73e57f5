"""The P.910 Annex E subject model against sureal's alternating-projection solvers."""

import contextlib
import io
import types

import numpy as np
import pandas as pd
import pytest

from study.analysis import p910_mle, to_sureal_dataset
from tests.conftest import synthetic_votes

sureal = pytest.importorskip("sureal")


DATASETS = [
    synthetic_votes(0, n_raters=10),
    synthetic_votes(1, n_raters=16, missing=0.3, repeats=5),
    synthetic_votes(2, n_raters=8, missing=0.1, repeats=20, bad_raters={"random": 2}),
]


def sureal_model(name, v):
    from sureal import subjective_model
    from sureal.dataset_reader import RawDatasetReader

    reader = RawDatasetReader(types.SimpleNamespace(**to_sureal_dataset(v)))
    with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
        return getattr(subjective_model, name)(reader).run_modeling()


@pytest.mark.parametrize("v", DATASETS)
def test_it_matches_sureal_projection_solver(v):
    ref = sureal_model("SubjectMLEModelProjectionSolver", v)
    q, r = p910_mle(v)
    np.testing.assert_allclose(q["quality"], ref["quality_scores"], atol=1e-9)
    np.testing.assert_allclose(q["quality_std"], ref["quality_scores_std"], atol=1e-9)
    np.testing.assert_allclose(r["mle_bias"], ref["observer_bias"], atol=1e-9)
    np.testing.assert_allclose(r["mle_bias_std"], ref["observer_bias_std"], atol=1e-9)
    np.testing.assert_allclose(r["mle_inconsistency"], ref["observer_inconsistency"], atol=1e-9)
    np.testing.assert_allclose(
        r["mle_inconsistency_std"], ref["observer_inconsistency_std"], atol=1e-9
    )
    lo, hi = ref["observer_inconsistency_ci95"]
    np.testing.assert_allclose(
        r["mle_inconsistency"] - r["mle_inconsistency_ci95_low"], lo, atol=1e-9
    )
    np.testing.assert_allclose(
        r["mle_inconsistency_ci95_high"] - r["mle_inconsistency"], hi, atol=1e-9
    )
    assert q.attrs["n_iter"] == ref["num_iter"] and q.attrs["converged"]
    assert r["rater"].tolist() == ref["observers"]


@pytest.mark.parametrize("v", DATASETS)
def test_it_matches_sureal_projection_solver2_ci(v):
    ref = sureal_model("SubjectMLEModelProjectionSolver2", v)
    q, _ = p910_mle(v, quality_std="stimulus")
    np.testing.assert_allclose(q["quality"], ref["quality_scores"], atol=1e-9)
    np.testing.assert_allclose(q["quality_std"], ref["quality_scores_std"], atol=1e-9)
    np.testing.assert_allclose(
        q["ci95_high"] - q["quality"], ref["quality_scores_ci95"][1], atol=1e-9
    )


def test_it_recovers_a_known_rater_bias():
    rng = np.random.default_rng(0)
    rows = []
    bias = {"low": -0.8, "mid": 0.0, "high": 0.8}
    for j in range(200):
        q = rng.uniform(1.5, 4.5)
        for rater, b in bias.items():
            rows.append((rater, "S", f"i{j}", "m", q + b + rng.normal(0, 0.2)))
    v = pd.DataFrame(rows, columns=["rater", "dataset", "image", "method", "score"])
    v["score"] = v["score"].clip(1, 5)
    _, r = p910_mle(v)
    est = r.set_index("rater")["mle_bias"]
    assert est["high"] - est["low"] == pytest.approx(1.6, abs=0.1)
    assert est.sum() == pytest.approx(0.0, abs=1e-12)


def test_it_rejects_an_unknown_ci_form():
    with pytest.raises(ValueError, match="quality_std"):
        p910_mle(DATASETS[0], quality_std="bootstrap")
