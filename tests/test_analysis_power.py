"""Power planning against statsmodels."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestPower

from study.analysis import paper_design, power_table, simulate_votes
from study.analysis.crossed import crossed_mean, t_test
from study.analysis.power import (
    detectable_difference,
    paired_t_power,
    planned_se,
    required_noncentrality,
    t_power,
)
from study.analysis.significance import crossed_tests


@pytest.mark.parametrize("n", [5, 15, 26, 60])
@pytest.mark.parametrize("effect", [0.2, 0.5, 1.0])
def test_it_matches_statsmodels_power(n, effect):
    want = TTestPower().power(effect_size=effect, nobs=n, alpha=0.05, alternative="two-sided")
    assert paired_t_power(effect * 0.7, 0.7, n) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("n", [5, 15, 26, 60, 200])
def test_it_matches_statsmodels_solver(n):
    want = TTestPower().solve_power(nobs=n, alpha=0.05, power=0.8) * 0.7
    got = detectable_difference(0.7, n)
    assert got == pytest.approx(want, abs=1e-5)  # statsmodels' own solver tolerance
    assert paired_t_power(got, 0.7, n) == pytest.approx(0.8, abs=1e-10)


def test_its_t_power_is_statsmodels_one_sample_power():
    for n, effect in ((5, 0.5), (26, 0.3), (60, 0.2)):
        want = TTestPower().power(effect_size=effect, nobs=n, alpha=0.05)
        assert t_power(effect * np.sqrt(n), n - 1) == pytest.approx(want, abs=1e-12)
        nc = required_noncentrality(n - 1.0)
        want = TTestPower().solve_power(nobs=n, alpha=0.05, power=0.8) * np.sqrt(n)
        assert nc == pytest.approx(want, rel=1e-4)  # statsmodels' own solver tolerance


def gaussian(rng, b, r, i, s_u, s_v, s_e, delta=0.0):
    return (
        delta
        + rng.normal(0, s_u, (b, r, 1))
        + rng.normal(0, s_v, (b, 1, i))
        + rng.normal(0, s_e, (b, r, i))
    )


@pytest.mark.parametrize("r, i", [(15, 50), (26, 100), (40, 20)])
def test_a_planned_design_detects_its_difference_four_times_in_five(r, i):
    s_u, s_v, s_e = 0.4, 0.35, 0.8
    se, df = planned_se(s_u**2, s_v**2, s_e**2, r, i)
    delta = se * required_noncentrality(df)
    rng = np.random.default_rng(r * i)
    y = gaussian(rng, 3000, r, i, s_u, s_v, s_e, delta)
    est = crossed_mean(y)
    assert np.std(est.mean) == pytest.approx(se, rel=0.05)
    assert np.mean(t_test(est)["p"] < 0.05) == pytest.approx(0.8, abs=0.03)


def test_it_plans_raters_and_images_from_the_votes():
    v = simulate_votes(paper_design(), n_raters=12, seed=4, bad_raters=0, method_image_sd=0.3,
                       method_rater_sd=0.3)  # fmt: skip
    t = power_table(v, planned_raters=(15, 26, 40), planned_images=(50, 100))
    bsd = t[t["dataset"] == "BSD100"].set_index(["n_raters", "n_images"])
    assert t.groupby("dataset").head(1)["planned"].eq(False).all()
    assert bsd.index[0] == (12, 100) and len(bsd) == 4 * 2
    assert bsd.loc[(12, 100), "n_comparisons"] == 36
    for n_images in (50, 100):  # more raters, smaller detectable differences
        assert bsd.xs(n_images, level="n_images")["min_detectable_diff"].is_monotonic_decreasing
    assert bsd.loc[(26, 100), "min_detectable_diff"] < bsd.loc[(26, 50), "min_detectable_diff"]
    assert (bsd["min_detectable_diff_corrected"] > bsd["min_detectable_diff"]).all()
    # The components are the mean over the dataset's pairs of significance.csv's.
    sig = crossed_tests(v)
    sig = sig[sig["dataset"] == "BSD100"]
    assert bsd["sd_image"].iloc[0] == pytest.approx(np.sqrt((sig["sd_image"] ** 2).mean()))
    assert bsd["sd_rater"].iloc[0] == pytest.approx(np.sqrt((sig["sd_rater"] ** 2).mean()))
    se, df = planned_se(
        *(bsd[c].iloc[0] ** 2 for c in ("sd_rater", "sd_image", "sd_resid")), 40, 50
    )
    assert bsd.loc[(40, 50), "se"] == pytest.approx(se) and bsd.loc[(40, 50), "df"] == df
    # The report passes significance.csv's table rather than estimating them again.
    again = power_table(v, (15, 26, 40), (50, 100), pairs=crossed_tests(v))
    pd.testing.assert_frame_equal(again, t, rtol=1e-12)


def test_it_marks_a_single_rater_undefined():
    v = simulate_votes(paper_design().head(24), n_raters=1, seed=0, bad_raters=0)
    t = power_table(v, planned_raters=(), planned_images=())
    assert t["min_detectable_diff"].isna().all() and (t["note"] != "").all()


def test_its_power_rises_with_the_difference_where_scipy_loses_a_tail():
    """At few df and a Bonferroni level scipy's noncentral t cdf returns NaN far in the lower
    tail; the power must still rise steadily with the noncentrality."""
    curve = [t_power(nc, 4.77, 0.05 / 66) for nc in np.linspace(6.0, 12.0, 61)]
    assert np.all(np.diff(curve) > 0) and 0 < curve[0] < curve[-1] < 1
