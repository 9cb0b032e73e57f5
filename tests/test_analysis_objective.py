"""Objective vs subjective: correlations against scipy, and the paper's point made visible."""

import itertools

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
from study.analysis.mapping import fit_logistic, logistic_d
from study.analysis.objective import correlate
from study.analysis.ranks import RankNull

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
    # Both metrics on the same stimuli: the HR reference (PSNR inf, SSIM 1) left out of both.
    judged = m[(m["method"] != "hr") & np.isfinite(m[["psnr", "ssim"]]).all(axis=1)]
    for _, row in res[res["level"] == "stimulus"].iterrows():
        g = judged if row["dataset"] == "all" else judged[judged["dataset"] == row["dataset"]]
        assert row["n"] == len(g)
        scope = m if row["dataset"] == "all" else m[m["dataset"] == row["dataset"]]
        assert row["n_reference"] == row["n_excluded"] == (scope["method"] == "hr").sum() > 0
        x, y = g[row["metric"]].to_numpy(), g["mos"].to_numpy()
        assert row["srocc"] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
        assert row["krocc"] == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)
        assert row["plcc_raw"] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
        assert row["srocc_ci95_low"] < row["srocc"] < row["srocc_ci95_high"]
    per = res.set_index(["dataset", "level", "metric"])["n"]
    assert (per.xs("psnr", level="metric") == per.xs("ssim", level="metric")).all()


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


def sse(x, y, p):
    return np.sum((vqeg_logistic(x, *p) - y) ** 2)


def monotonic_on(p, low, high, points=4001):
    steps = np.diff(vqeg_logistic(np.linspace(low, high, points), *p))
    return bool(np.all(steps >= -1e-12) or np.all(steps <= 1e-12))


def adversarial_sets(k=60, seed=3):
    """Data on which the 5-parameter logistic bends back: an inverted U, a logistic against a
    contrary linear trend, outliers at one end, and pure noise."""
    rng = np.random.default_rng(seed)
    for i in range(k):
        x = rng.uniform(20, 35, rng.integers(8, 120))
        t = (x - x.min()) / np.ptp(x)
        y = [
            3 - 6 * (t - 0.5) ** 2,
            vqeg_logistic(t, 3, 12, 0.5, -2.5, 2),
            2 + 2 * t + np.where(t > 0.9, -3, 0),
            np.zeros_like(t),
        ][i % 4] + rng.normal(0, rng.uniform(0.02, 0.6), len(x))
        yield x, y


def test_its_fitted_mapping_is_monotonic_over_the_data():
    # P.1401 asks for a monotonic mapping; the 5-parameter logistic's b4 x can bend it back.
    replaced = 0
    for x, y in adversarial_sets():
        p, note = fit_logistic(x, y)
        assert p is not None, note
        assert monotonic_on(p, x.min(), x.max()), (p, note)
        line = np.polyfit(x, y, 1)
        assert sse(x, y, p) <= np.sum((np.polyval(line, x) - y) ** 2) * (1 + 1e-9)
        assert logistic_d(p) in (2, 4, 5)
        replaced += logistic_d(p) != 5
        assert (note == "") == (logistic_d(p) == 5)
    assert replaced > 0  # the data did bend the 5-parameter logistic


def test_it_keeps_the_5_parameter_logistic_where_it_is_monotonic():
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 1, 300)
    y = vqeg_logistic(x, 3.0, 10, 0.5, 0.4, 2.0) + rng.normal(0, 0.05, 300)
    p, note = fit_logistic(x, y)
    assert note == "" and logistic_d(p) == 5 and monotonic_on(p, 0, 1)
    q, _ = optimize.curve_fit(vqeg_logistic, x, y, p0=(3.0, 10, 0.5, 0.4, 2.0), maxfev=20000)
    assert sse(x, y, p) == pytest.approx(sse(x, y, q), rel=1e-6)


def test_it_never_fails_on_near_linear_data():
    # curve_fit failed on ~40% of these; the mapping must exist, be monotonic and never lose to
    # a straight line.
    rng = np.random.default_rng(4)
    for _ in range(150):
        n = rng.integers(6, 200)
        x = rng.uniform(22, 34, n)
        y = 1 + 0.1 * x * rng.uniform(-1, 1) + rng.normal(0, rng.uniform(0.05, 1), n)
        p, note = fit_logistic(x, y)
        assert p is not None, note
        assert monotonic_on(p, x.min(), x.max())
        assert sse(x, y, p) <= np.sum((np.polyval(np.polyfit(x, y, 1), x) - y) ** 2) * (1 + 1e-9)


def test_correlation_csv_maps_monotonically(monkeypatch):
    seen = []

    def spy(x, y):
        p, note = fit_logistic(x, y)
        seen.append((x, p))
        return p, note

    monkeypatch.setattr("study.analysis.objective.fit_logistic", spy)
    rows = []
    for i, (x, y) in enumerate(adversarial_sets(k=8)):
        rows += [("S", f"i{i}_{j}", "m", a, b) for j, (a, b) in enumerate(zip(x, y, strict=True))]
    t = pd.DataFrame(rows, columns=["dataset", "image", "method", "psnr", "mos"])
    obj = t.assign(ssim=t["psnr"] / 40).drop(columns="mos")
    for _, g in t.groupby(t["image"].str.split("_").str[0]):
        objective_correlation(g[["dataset", "image", "method", "mos"]], obj)
    assert len(seen) >= 16
    for x, p in seen:
        assert p is None or monotonic_on(p, x.min(), x.max())


def brute_force_p(x, y, statistic):
    """Two-sided p over every ordering of y (itertools): scipy's statistic, or for Spearman the
    Pearson correlation of scipy's ranks, vectorised over the orderings."""
    orderings = np.array(list(itertools.permutations(range(len(y)))))
    if statistic is stats.spearmanr:
        rx = stats.rankdata(x) - stats.rankdata(x).mean()
        ry = stats.rankdata(y)[orderings]
        ry -= ry.mean(axis=1, keepdims=True)
        null = np.abs(ry @ rx) / np.sqrt((rx @ rx) * (ry**2).sum(axis=1))
    else:
        null = np.abs([statistic(x, y[q]).statistic for q in orderings])
    observed = abs(statistic(x, y).statistic)
    return np.mean(null >= observed - 1e-12)


def test_rank_correlations_over_few_points_have_exact_permutation_p_values():
    rng = np.random.default_rng(6)
    x = np.array([1.0, 2, 2, 4, 5, 7])  # ties in both
    y = np.round(x / 3 + rng.normal(0, 1, 6), 0)
    null = RankNull(y)
    assert null.method == "exact permutation (720 orderings)"
    srocc_p, krocc_p = null.p_values(x, y)
    assert srocc_p == pytest.approx(brute_force_p(x, y, stats.spearmanr), abs=1e-12)
    assert krocc_p == pytest.approx(brute_force_p(x, y, stats.kendalltau), abs=1e-12)
    res = correlate(x, y)
    assert (res["srocc_p"], res["krocc_p"]) == (srocc_p, krocc_p)
    assert res["p_method"] == null.method


def test_rank_correlations_over_10_to_50_points_use_random_permutations():
    rng = np.random.default_rng(7)
    x = rng.normal(size=12)
    y = 0.5 * x + rng.normal(size=12)
    res = correlate(x, y)
    assert res["p_method"].startswith("permutation (9,999 random")
    # Without ties scipy's Kendall p is exact: the random permutations land within their error.
    assert res["krocc_p"] == pytest.approx(stats.kendalltau(x, y, method="exact").pvalue, abs=0.02)
    assert correlate(np.arange(60.0), np.arange(60.0) ** 2)["p_method"] == "asymptotic"


def test_correlation_csv_gives_method_level_p_values_by_permutation(study):
    votes, obj = study
    res = objective_correlation(mos_per_stimulus(votes), obj)
    method = res[res["level"] == "method"]
    # 8 methods a dataset once the HR reference is out: every ordering enumerated.
    per_dataset = method[method["dataset"] != "all"]
    assert (per_dataset["n"] == 8).all()
    assert per_dataset["p_method"].str.startswith("exact permutation").all()
    m = mos_per_stimulus(votes).merge(obj, on=["dataset", "image", "method"])
    m = m[m["method"] != "hr"]
    g = m[m["dataset"] == "Set5"].groupby("method")[["mos", "psnr"]].mean()
    row = per_dataset[(per_dataset["dataset"] == "Set5") & (per_dataset["metric"] == "psnr")]
    want = brute_force_p(g["psnr"].to_numpy(), g["mos"].to_numpy(), stats.spearmanr)
    assert row["srocc_p"].iloc[0] == pytest.approx(want, abs=1e-12)
