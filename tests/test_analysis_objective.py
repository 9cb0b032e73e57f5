"""Objective vs subjective: correlations against scipy, and the paper's point made visible."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from study.analysis import (
    method_ranking,
    mos_per_stimulus,
    mos_table,
    objective_correlation,
    paper_design,
    simulate_votes,
    vqeg_logistic,
)
from study.analysis.objective import correlate, fit_logistic

# SRGAN paper, Table 2: PSNR (dB) / SSIM per set and method.
TABLE2 = {
    "Set5": {
        "nn": (26.26, 0.7552),
        "bicubic": (28.43, 0.8211),
        "srcnn": (30.07, 0.8627),
        "selfexsr": (30.33, 0.872),
        "drcn": (31.52, 0.8938),
        "espcn": (30.76, 0.8784),
        "srresnet-mse": (32.05, 0.9019),
        "srgan-vgg54": (29.40, 0.8472),
        "hr": (np.inf, 1.0),
    },
    "Set14": {
        "nn": (24.64, 0.7100),
        "bicubic": (25.99, 0.7486),
        "srcnn": (27.18, 0.7861),
        "selfexsr": (27.45, 0.7972),
        "drcn": (28.02, 0.8074),
        "espcn": (27.66, 0.8004),
        "srresnet-mse": (28.49, 0.8184),
        "srgan-vgg54": (26.02, 0.7397),
        "hr": (np.inf, 1.0),
    },
    "BSD100": {
        "nn": (25.02, 0.6606),
        "bicubic": (25.94, 0.6935),
        "srcnn": (26.68, 0.7291),
        "selfexsr": (26.83, 0.7387),
        "drcn": (27.21, 0.7493),
        "espcn": (27.02, 0.7442),
        "srresnet-mse": (27.58, 0.7620),
        "srgan-vgg54": (25.16, 0.6688),
        "hr": (np.inf, 1.0),
    },
}


@pytest.fixture(scope="module")
def study():
    design = paper_design()
    design = design[design["method"].isin(TABLE2["Set5"])]
    rng = np.random.default_rng(0)
    obj = design.copy()
    psnr = [TABLE2[d][m][0] for d, m in zip(obj["dataset"], obj["method"], strict=True)]
    ssim = [TABLE2[d][m][1] for d, m in zip(obj["dataset"], obj["method"], strict=True)]
    # Per-image spread around the published means (the HR reference stays inf / 1).
    obj["psnr"] = np.where(np.isinf(psnr), np.inf, np.array(psnr) + rng.normal(0, 1.5, len(obj)))
    obj["ssim"] = np.where(np.isinf(psnr), 1.0, np.array(ssim) + rng.normal(0, 0.02, len(obj)))
    votes = simulate_votes(design, n_raters=26, seed=11)
    return votes, obj


def test_it_reproduces_the_papers_pattern(study):
    votes, obj = study
    rank = method_ranking(mos_table(votes), obj).set_index(["dataset", "method"])
    for ds in TABLE2:
        g = rank.loc[ds]
        assert g["mos"].idxmax() == "hr"
        assert g.drop(index="hr")["mos"].idxmax() == "srgan-vgg54"
        # PSNR puts SRGAN in the bottom half; people put it right after the original.
        assert g.loc["srgan-vgg54", "mos_rank"] == 2
        assert g.loc["srgan-vgg54", "psnr_rank"] >= 6
        assert g.loc["srgan-vgg54", "rank_shift"] >= 4


def test_it_matches_scipy_rank_correlations(study):
    votes, obj = study
    stim = mos_per_stimulus(votes)
    res = objective_correlation(stim, obj)
    m = stim.merge(obj, on=["dataset", "image", "method"])
    for _, row in res[res["level"] == "stimulus"].iterrows():
        g = m if row["dataset"] == "all" else m[m["dataset"] == row["dataset"]]
        g = g[np.isfinite(g[row["metric"]])]
        assert row["n"] == len(g)
        x, y = g[row["metric"]].to_numpy(), g["mos"].to_numpy()
        assert row["srocc"] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
        assert row["krocc"] == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)
        assert row["plcc_raw"] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
        assert row["srocc_ci95_low"] < row["srocc"] < row["srocc_ci95_high"]
    psnr_rows = res[(res["metric"] == "psnr") & (res["level"] == "stimulus")]
    assert (psnr_rows["n_excluded"] > 0).all()  # the HR reference's infinite PSNR


def test_it_fits_the_vqeg_logistic():
    rng = np.random.default_rng(1)
    x = rng.uniform(24, 33, 200)
    true = (3.0, 0.9, 28.0, 0.05, 1.5)
    y = vqeg_logistic(x, *true) + rng.normal(0, 0.1, len(x))
    p, note = fit_logistic(x, y)
    assert note == ""
    pred = vqeg_logistic(x, *p)
    res = correlate(x, y)
    assert res["plcc"] == pytest.approx(stats.pearsonr(pred, y)[0], abs=1e-12)
    assert res["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)), abs=1e-12)
    # The fit is a least-squares optimum: curve_fit from the true parameters finds no better.
    q, _ = optimize.curve_fit(vqeg_logistic, x, y, p0=true, maxfev=20000)
    assert np.sum((vqeg_logistic(x, *q) - y) ** 2) == pytest.approx(
        np.sum((pred - y) ** 2), rel=1e-6
    )
    assert res["plcc"] > res["plcc_raw"] > 0.8


def test_it_uses_fisher_z_intervals():
    rng = np.random.default_rng(2)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    res = correlate(x, y)
    z, se = np.arctanh(res["srocc"]), np.sqrt(1.06 / 47)
    assert res["srocc_ci95_low"] == pytest.approx(np.tanh(z - 1.959964 * se))
    z, se = np.arctanh(res["krocc"]), np.sqrt(0.437 / 46)
    assert res["krocc_ci95_high"] == pytest.approx(np.tanh(z + 1.959964 * se))


def test_it_marks_too_few_points_undefined():
    res = correlate(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    assert np.isnan(res["srocc"]) and res["note"]
    res = correlate(np.arange(5.0), np.array([1.0, 3.0, 2.0, 5.0, 4.0]))
    assert np.isfinite(res["srocc"]) and np.isnan(res["plcc"]) and "fewer than 6" in res["note"]


def test_it_checks_the_objective_table():
    from study.analysis import VotesError

    stim = pd.DataFrame({"dataset": ["S"], "image": ["i"], "method": ["m"], "mos": [3.0]})
    with pytest.raises(VotesError, match="lack column.*ssim"):
        objective_correlation(
            stim, pd.DataFrame({"dataset": ["S"], "image": ["i"], "method": ["m"], "psnr": [1]})
        )
    bad = pd.DataFrame(
        {"dataset": ["S"], "image": ["i"], "method": ["m"], "psnr": ["x"], "ssim": [1]}
    )
    with pytest.raises(VotesError, match="not numeric"):
        objective_correlation(stim, bad)
