"""JOD differences generalise over raters and images: false positives near 5% on simulated nulls
with method x image and method x rater interactions, and power on a realistic effect.

Figures and the designs' spread: bench/bench_pc_calibration.py, docs/benchmarks.md."""

import numpy as np
import pytest

from study.analysis.simulate_pc import rejection_rates

# (raters, images, comparisons per rater or None for the full design, image_sd, rater_sd)
NULLS = [
    (10, 20, None, 1.0, 0.5),  # few raters and images, large interactions
    (20, 50, None, 0.0, 0.0),  # no interaction: the combination must not be far too cautious
    (40, 100, 30, 0.5, 0.25),  # a random design, moderate interactions
    (26, 40, None, 1.0, 0.0),  # the paper's panel, images disagreeing strongly
]


@pytest.mark.slow
@pytest.mark.parametrize("raters, images, per_rater, image_sd, rater_sd", NULLS)
def test_false_positives_stay_near_five_percent(raters, images, per_rater, image_sd, rater_sd):
    r = rejection_rates(
        np.zeros(3), raters, images, per_rater, image_sd, rater_sd, reps=200, n_boot=200
    )
    assert 0.02 <= r["rate"] <= 0.08, r
    assert r["any_holm"] <= 0.08, r  # Holm keeps the family-wise rate at or under 5%
    if image_sd >= 0.5:
        # Resampling raters alone (images fixed) calls many of these equal pairs different.
        assert r["rate_raters_only"] > 2 * r["rate"], r


@pytest.mark.slow
def test_a_realistic_difference_is_found():
    # Steps of 0.3 JOD (a 58% preference) on 40 images, 20 raters, moderate interactions.
    r = rejection_rates([0.0, 0.3, 0.6], 20, 40, None, 0.5, 0.25, reps=100, n_boot=200)
    assert r["pairs"][1] >= 0.8  # 0.6 JOD apart
    assert r["pairs"][0] >= 0.2 and r["pairs"][2] >= 0.2  # 0.3 JOD apart: often, not always
    assert r["any_holm"] >= 0.8
