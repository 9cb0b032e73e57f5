"""Crossed random raters and images: moment estimates against statsmodels and the ANOVA."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from study.analysis.crossed import crossed_mean, t_test, variance_components


def gaussian(rng, shape, sd_rater, sd_image, sd_resid, missing=0.0):
    """Continuous y = a_r + b_i + e on (..., R, I), cells missing at random."""
    *batch, r, i = shape
    y = (
        rng.normal(0, sd_rater, (*batch, r, 1))
        + rng.normal(0, sd_image, (*batch, 1, i))
        + rng.normal(0, sd_resid, shape)
    )
    y[rng.random(shape) < missing] = np.nan
    return y


def anova_components(y):
    """Two-way random ANOVA without replication, written out from the expected mean squares."""
    r, i = y.shape
    m, rows, cols = y.mean(), y.mean(axis=1), y.mean(axis=0)
    ms_r = i * ((rows - m) ** 2).sum() / (r - 1)
    ms_i = r * ((cols - m) ** 2).sum() / (i - 1)
    resid = y - rows[:, None] - cols[None, :] + m
    ms_e = (resid**2).sum() / ((r - 1) * (i - 1))
    return (ms_r - ms_e) / i, (ms_i - ms_e) / r, ms_e, (ms_r, ms_i, ms_e)


def test_on_a_complete_design_it_is_the_two_way_anova():
    rng = np.random.default_rng(0)
    full = 0
    for r, i in ((5, 7), (26, 100), (3, 2), (10, 20)):
        y = gaussian(rng, (r, i), 0.5, 0.4, 0.6)
        want = anova_components(y)
        np.testing.assert_allclose(variance_components(y), want[:3], rtol=1e-10, atol=1e-12)
        est = crossed_mean(y)
        if est.var_rater > 0 and est.var_image > 0:  # nothing pooled: the quasi-F se and df
            ms_r, ms_i, ms_e = want[3]
            v = ms_r + ms_i - ms_e
            df = v**2 / (ms_r**2 / (r - 1) + ms_i**2 / (i - 1) + ms_e**2 / ((r - 1) * (i - 1)))
            assert est.se == pytest.approx(np.sqrt(v / (r * i)), rel=1e-10)
            assert est.df == pytest.approx(df, rel=1e-10)
            full += 1
    assert full >= 2


def test_it_matches_statsmodels_mixedlm_on_a_balanced_design():
    smf = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(1)
    checked = 0
    for seed in range(6):
        y = gaussian(np.random.default_rng(seed), (8, 10), 0.5, 0.4, 0.6) + 0.3
        est = crossed_mean(y)
        if not (est.var_rater > 0 and est.var_image > 0):
            continue  # REML sits on the boundary there; the moment estimate is truncated
        rr, ii = np.indices(y.shape)
        frame = pd.DataFrame({"y": y.ravel(), "rater": rr.ravel(), "image": ii.ravel(), "g": 1})
        vc = {"rater": "0 + C(rater)", "image": "0 + C(image)"}
        fit = smf.mixedlm("y ~ 1", frame, groups="g", vc_formula=vc).fit(reml=True)
        image, rater = fit.vcomp  # statsmodels orders the components by name
        assert est.var_rater == pytest.approx(rater, rel=1e-4)
        assert est.var_image == pytest.approx(image, rel=1e-4)
        assert est.var_resid == pytest.approx(fit.scale, rel=1e-4)
        assert est.mean == pytest.approx(fit.fe_params["Intercept"], abs=1e-10)
        assert est.se == pytest.approx(fit.bse["Intercept"], rel=1e-4)
        checked += 1
    assert checked >= 2, rng


def test_it_is_unbiased_with_missing_cells():
    rng = np.random.default_rng(2)
    y = gaussian(rng, (4000, 12, 30), 0.5, 0.3, 0.7, missing=0.3)
    s_a, s_b, s_e = (np.nanmean(c) for c in variance_components(y))
    # 4000 replicates: the mean estimate is within a few standard errors of the truth.
    assert s_a == pytest.approx(0.25, abs=0.01)
    assert s_b == pytest.approx(0.09, abs=0.005)
    assert s_e == pytest.approx(0.49, abs=0.005)


def test_its_standard_error_matches_the_spread_of_the_mean_with_missing_cells():
    rng = np.random.default_rng(3)
    y = gaussian(rng, (4000, 15, 40), 0.4, 0.4, 0.8, missing=0.25)
    est = crossed_mean(y)
    assert np.sqrt(np.mean(est.se**2)) == pytest.approx(np.std(est.mean), rel=0.05)


def test_its_weighted_mean_is_the_mean_over_votes():
    rng = np.random.default_rng(4)
    y = gaussian(rng, (6, 9), 0.5, 0.5, 0.5)
    w = rng.integers(1, 4, y.shape).astype(float)
    est = crossed_mean(y, w)
    assert est.mean == pytest.approx((y * w).sum() / w.sum(), abs=1e-12)
    assert est.se > crossed_mean(y).se * 0.5  # defined and of the same order


def test_its_interval_covers_the_truth_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    y = gaussian(rng, (4000, 10, 25), 0.4, 0.3, 0.6, missing=0.2) + 1.0
    res = t_test(crossed_mean(y), null=1.0)
    cover = np.mean((res["ci_low"] <= 1.0) & (1.0 <= res["ci_high"]))
    assert cover == pytest.approx(0.95, abs=0.015)
    assert np.mean(res["p"] < 0.05) == pytest.approx(1 - cover, abs=1e-12)


def test_it_says_when_the_design_cannot_generalise():
    one_image = np.array([[1.0], [2.0], [3.0]])
    one_rater = np.array([[1.0, 2.0, 4.0]])
    flat = np.zeros((3, 4))
    for y in (one_image, one_rater, flat):
        est = crossed_mean(y)
        assert not est.defined and np.isnan(est.se) and np.isnan(est.df)


def test_it_pools_what_the_design_cannot_separate():
    # Each rater saw a different image: every cell is independent, a one-sample t over cells.
    diagonal = np.full((4, 4), np.nan)
    np.fill_diagonal(diagonal, [1.0, 2.0, 3.0, 5.0])
    res = t_test(crossed_mean(diagonal))
    want = stats.ttest_1samp([1.0, 2.0, 3.0, 5.0], 0.0)
    assert res["p"] == pytest.approx(want.pvalue, rel=1e-12)
    # Each rater saw one image, each image several raters: the image term stays.
    rng = np.random.default_rng(6)
    y = np.full((4000, 60, 12), np.nan)
    image_of = np.arange(60) % 12
    b = rng.normal(0, 0.5, (4000, 12))
    y[:, np.arange(60), image_of] = b[:, image_of] + rng.normal(0, 0.5, (4000, 60))
    est = crossed_mean(y)
    assert np.sqrt(np.mean(est.se**2)) == pytest.approx(np.std(est.mean), rel=0.05)
