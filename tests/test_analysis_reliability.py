"""Krippendorff's alpha against the krippendorff package, ICC against pingouin."""

import numpy as np
import pandas as pd
import pytest

from study.analysis import icc, krippendorff_alpha, reliability_table
from tests.conftest import synthetic_votes

krippendorff = pytest.importorskip("krippendorff")
pg = pytest.importorskip("pingouin")


DATASETS = [
    synthetic_votes(0, n_raters=10),
    synthetic_votes(1, n_raters=15, missing=0.3, repeats=8),
    synthetic_votes(2, n_raters=6, missing=0.6),
    synthetic_votes(3, n_raters=20, bad_raters={"random": 5}, missing=0.05),
]


def reliability_matrix(v):
    r = (
        v[v["kind"] == "rating"]
        .sort_values("repeat")
        .groupby(["dataset", "image", "method", "rater"], as_index=False)
        .first()
    )
    r["unit"] = r["dataset"] + "/" + r["image"] + "/" + r["method"]
    return r.pivot(index="rater", columns="unit", values="score").to_numpy(dtype=float)


@pytest.mark.parametrize("v", DATASETS)
@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_it_matches_the_krippendorff_package(v, level):
    want = krippendorff.alpha(reliability_data=reliability_matrix(v), level_of_measurement=level)
    assert krippendorff_alpha(v, level) == pytest.approx(want, abs=1e-12)


def test_it_matches_krippendorff_on_non_integer_scores():
    v = synthetic_votes(4, n_raters=8, missing=0.2)
    v["score"] = v["score"] - 0.5 * (v.index % 2)
    v["score"] = v["score"].clip(1, 5)
    for level in ("ordinal", "interval"):
        want = krippendorff.alpha(
            reliability_data=reliability_matrix(v), level_of_measurement=level
        )
        assert krippendorff_alpha(v, level) == pytest.approx(want, abs=1e-12)


ICC_DATASETS = [DATASETS[0], DATASETS[3], synthetic_votes(5, n_raters=12, missing=0.01, repeats=5)]


@pytest.mark.parametrize("v", ICC_DATASETS)
def test_it_matches_pingouin_icc(v):
    from pingouin.config import _no_rounding

    r = v[v["kind"] == "rating"].assign(
        unit=lambda f: f["dataset"] + "/" + f["image"] + "/" + f["method"]
    )
    with _no_rounding():
        want = pg.intraclass_corr(
            r, targets="unit", raters="rater", ratings="score", nan_policy="omit"
        )
    ours = icc(v)
    assert ours["type"].tolist() == want["Type"].tolist()
    for col, ref in (("icc", "ICC"), ("F", "F"), ("df1", "df1"), ("df2", "df2"), ("p", "pval")):
        np.testing.assert_allclose(
            ours[col].astype(float), want[ref].astype(float), rtol=1e-9, atol=1e-12
        )
    ci = np.vstack(want["CI95"].to_numpy())
    np.testing.assert_allclose(ours[["ci95_low", "ci95_high"]].to_numpy(), ci, atol=1e-9)


def test_it_marks_icc_undefined_when_no_stimulus_has_every_rater():
    v = pd.DataFrame(
        {
            "rater": ["a", "b", "c", "a"],
            "dataset": "S",
            "image": ["i", "i", "j", "j"],
            "method": "m",
            "score": [1, 2, 3, 4],
        }
    )
    out = icc(v)
    assert out["icc"].isna().all() and out["note"].str.contains("undefined").all()


def test_it_tabulates_reliability_per_dataset_and_pooled():
    t = reliability_table(DATASETS[0])
    assert set(t["dataset"]) == {"all", "Set5", "Set14", "BSD100"}
    assert len(t) == 4 * 8
    assert (t["value"].notna() | (t["note"] != "")).all()


def test_it_marks_a_single_rater_dataset_undefined():
    v = pd.DataFrame(
        {"rater": "a", "dataset": "S", "image": ["i", "j"], "method": "m", "score": [1, 4]}
    )
    t = reliability_table(v)
    assert t["value"].isna().all() and (t["note"] != "").all()


def test_it_bootstraps_alpha_over_stimuli_like_the_package_on_resampled_data():
    from study.analysis import alpha_bootstrap_ci
    from study.analysis.reliability import _alpha_from, _first_votes, _unit_coincidences

    v = DATASETS[1]
    first = _first_votes(v[v["kind"] == "rating"])
    values, p_u = _unit_coincidences(first)
    m = reliability_matrix(v)
    m = m[:, (~np.isnan(m)).sum(axis=0) >= 2]  # the pairable units, in the same (sorted) order
    assert m.shape[1] == len(p_u)
    rng = np.random.default_rng(7)
    for _ in range(3):
        idx = rng.integers(0, len(p_u), len(p_u))
        w = np.bincount(idx, minlength=len(p_u))
        ours = _alpha_from(np.tensordot(w, p_u, axes=1), values, "ordinal")
        want = krippendorff.alpha(reliability_data=m[:, idx], level_of_measurement="ordinal")
        assert ours == pytest.approx(want, abs=1e-12)
    lo, hi = alpha_bootstrap_ci(v)
    assert lo < krippendorff_alpha(v) < hi
    assert (lo, hi) == alpha_bootstrap_ci(v)  # deterministic
