"""Power planning against statsmodels."""

import numpy as np
import pytest
from statsmodels.stats.power import TTestPower

from study.analysis import paper_design, power_table, simulate_votes
from study.analysis.power import ARE_WILCOXON, detectable_difference, paired_t_power


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


def test_it_plans_current_and_future_panels():
    v = simulate_votes(paper_design(), n_raters=12, seed=4, bad_raters=0)
    t = power_table(v, planned=(15, 26, 40))
    bsd = t[t["dataset"] == "BSD100"].set_index("n_raters")
    assert bsd.loc[12, "planned"] == False  # noqa: E712
    assert list(bsd.index) == [12, 15, 26, 40]
    assert bsd["min_detectable_diff"].is_monotonic_decreasing
    assert (bsd["min_detectable_diff_corrected"] > bsd["min_detectable_diff"]).all()
    assert (bsd["min_detectable_diff_wilcoxon"] > bsd["min_detectable_diff"]).all()
    assert bsd.loc[12, "n_comparisons"] == 36
    # sd_diff is the pooled sd of per-rater mean differences between methods.
    r = v[v["dataset"] == "BSD100"]
    per = r.groupby(["rater", "method"])["score"].mean().unstack()
    cols = list(per.columns)
    var = [(per[a] - per[b]).var() for i, a in enumerate(cols) for b in cols[i + 1 :]]
    assert bsd.loc[12, "sd_diff"] == pytest.approx(np.sqrt(np.mean(var)))
    want = (
        TTestPower().solve_power(nobs=12 * ARE_WILCOXON, alpha=0.05, power=0.8)
        * bsd.loc[12, "sd_diff"]
    )
    assert bsd.loc[12, "min_detectable_diff_wilcoxon"] == pytest.approx(want, abs=1e-5)


def test_it_marks_a_single_rater_undefined():
    v = simulate_votes(paper_design().head(24), n_raters=1, seed=0, bad_raters=0)
    t = power_table(v, planned=())
    assert t["min_detectable_diff"].isna().all() and (t["note"] != "").all()
