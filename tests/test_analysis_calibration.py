"""Calibration of the primary test on simulated null studies (``significance.csv``).

Every design has two methods with the same expected vote, so each significant result is a false
positive; at the 5% level the rate should stay near 0.05. Designs span 10-40 raters, 20-100
images, interactions from none to large, unequal rater noise and missing votes. The votes are
discrete (rounded and clipped to 1-5), as people's are. bench/bench_calibration.py prints the
same figures next to the paper's Wilcoxon.
"""

import numpy as np
import pytest

from study.analysis.crossed import crossed_mean, t_test
from study.analysis.null_studies import null_design, null_scores
from study.analysis.significance import crossed_tests

pytestmark = pytest.mark.slow

# raters, images, method x image sd, method x rater sd, missing, rater noise spread
DESIGNS = [
    (10, 20, 0.0, 0.0, 0.1, 0.0),
    (26, 100, 0.0, 0.0, 0.0, 0.3),
    (10, 100, 0.15, 0.15, 0.1, 0.0),
    (26, 100, 0.3, 0.3, 0.1, 0.3),
    (40, 20, 0.5, 0.5, 0.2, 0.0),
    (10, 20, 0.6, 0.2, 0.2, 0.3),
    (40, 100, 0.1, 0.5, 0.05, 0.0),
]
REPLICATES = 1000  # the rate's standard error is 0.007 at 0.05
CHUNK = 250  # replicates drawn at once (memory)


def false_positive_rate(design, seed):
    r, i, mi, mr, missing, spread = design
    hits = 0
    for k in range(REPLICATES // CHUNK):
        s = null_scores(r, i, CHUNK, method_image_sd=mi, method_rater_sd=mr, missing=missing,
                        rater_noise_spread=spread, seed=seed * 1000 + k)  # fmt: skip
        res = t_test(crossed_mean(s[..., 0] - s[..., 1]))
        assert np.isfinite(res["p"]).all()
        hits += int((res["p"] < 0.05).sum())
    return hits / REPLICATES


@pytest.mark.parametrize(
    "design", DESIGNS, ids=lambda d: "r{}-i{}-mi{}-mr{}-miss{}-ns{}".format(*d)
)
def test_its_false_positive_rate_stays_near_five_percent(design):
    rate = false_positive_rate(design, seed=DESIGNS.index(design) + 1)
    assert 0.02 <= rate <= 0.08, rate


def test_the_report_path_keeps_its_level_on_a_paper_size_null_study():
    """The same through the vote table, as significance.csv is made (200 replicates)."""
    v = null_design(26, 100, replicates=200, method_image_sd=0.3, method_rater_sd=0.3,
                    missing=0.1, seed=99)  # fmt: skip
    res = crossed_tests(v)
    assert len(res) == 200 and res["p"].notna().all()
    assert 0.02 <= res["significant_holm"].mean() <= 0.08


def test_it_finds_a_real_difference():
    """Power is not given up for the level: a difference of 0.4 on the MOS scale (the paper's
    SRResNet vs DRCN on BSD100 is 0.17, SRGAN vs SRResNet 1.27) is found nearly always."""
    s = null_scores(26, 100, 200, method_image_sd=0.3, method_rater_sd=0.3, seed=5)
    res = t_test(crossed_mean(s[..., 0] - s[..., 1] + 0.4))
    assert np.mean(res["p"] < 0.05) > 0.9
