"""Paired and unpaired tests against scipy, statsmodels and pingouin."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from study.analysis import friedman, pairwise_tests
from study.analysis.crossed import crossed_mean, t_test
from study.analysis.null_studies import null_design, null_scores
from study.analysis.paper_tests import rank_biserial_paired, signed_rank_method, signed_rank_test
from study.analysis.significance import bh, crossed_tests, holm, verdicts
from tests.conftest import synthetic_votes

DATASETS = [
    synthetic_votes(0, n_images=4, n_raters=12),
    synthetic_votes(1, n_images=4, n_raters=20, missing=0.25, repeats=6),
    synthetic_votes(
        2, n_images=1, n_raters=8, missing=0.1
    ),  # small: scipy's exact/permutation path
]


def reference_pairs(v, a, b, ds, unit):
    r = v[(v["kind"] == "rating") & (v["dataset"] == ds)]
    r = r.groupby(["dataset", "image", "method", "rater"], as_index=False)["score"].mean()
    x = r[r["method"] == a].groupby(unit)["score"].mean()
    y = r[r["method"] == b].groupby(unit)["score"].mean()
    return x.align(y, join="inner")


@pytest.mark.parametrize("v", DATASETS)
@pytest.mark.parametrize(
    "pairing, unit", [("rater_image", ["rater", "image"]), ("rater", ["rater"])]
)
def test_it_matches_scipy_wilcoxon_per_pair(v, pairing, unit):
    res = pairwise_tests(v, pairing=pairing)
    assert len(res) == 66 + 66 + 36
    # scipy's small-sample permutation path takes ~1 s a call: compare a sample of the pairs.
    for _, row in res.sample(8 if pairing == "rater" else 25, random_state=0).iterrows():
        x, y = reference_pairs(v, row["method_a"], row["method_b"], row["dataset"], unit)
        assert row["n_pairs"] == len(x)
        if (x - y).abs().sum() == 0:
            assert np.isnan(row["p"]) and row["note"]
            continue
        w = stats.wilcoxon(x, y)
        assert row["statistic"] == pytest.approx(w.statistic, abs=1e-9)
        if row["p_method"].startswith("sign-flip permutation"):
            # 14-50 pairs with ties: seeded random flips where scipy takes the normal
            # approximation; against scipy's own random flips, within their Monte Carlo error.
            flips = stats.PermutationMethod(n_resamples=3000, rng=0)
            assert row["p"] == pytest.approx(stats.wilcoxon(x, y, method=flips).pvalue, abs=0.03)
            continue
        assert row["p"] == pytest.approx(w.pvalue, rel=1e-9, abs=1e-12)
        assert row["mean_diff"] == pytest.approx((x - y).mean())


@pytest.mark.parametrize("v", DATASETS[:2])
def test_it_adjusts_like_statsmodels(v):
    res = pairwise_tests(v)
    for _, g in res.groupby("dataset"):
        ok = g["p"].notna()
        np.testing.assert_allclose(
            g.loc[ok, "p_holm"], multipletests(g.loc[ok, "p"], method="holm")[1], atol=1e-12
        )
        np.testing.assert_allclose(
            g.loc[ok, "p_bh"], multipletests(g.loc[ok, "p"], method="fdr_bh")[1], atol=1e-12
        )
    allp = pairwise_tests(v, family="all")
    ok = allp["p"].notna()
    np.testing.assert_allclose(
        allp.loc[ok, "p_holm"], multipletests(allp.loc[ok, "p"], method="holm")[1], atol=1e-12
    )


def test_it_keeps_nan_out_of_the_correction():
    p = np.array([0.01, np.nan, 0.04, 0.03])
    np.testing.assert_allclose(holm(p)[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="holm")[1])
    np.testing.assert_allclose(bh(p)[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="fdr_bh")[1])
    assert np.isnan(holm(p)[1]) and np.isnan(bh(p)[1])


def test_it_matches_pingouin_rank_biserial():
    pg = pytest.importorskip("pingouin")
    rng = np.random.default_rng(1)
    for _ in range(5):
        x, y = rng.integers(1, 6, 40), rng.integers(1, 6, 40)
        want = pg.wilcoxon(x, y)["RBC"].iloc[0]
        assert rank_biserial_paired(x - y) == pytest.approx(want, abs=1e-12)


def test_it_matches_scipy_signed_rank_above_50_pairs():
    rng = np.random.default_rng(2)
    for n in (51, 300, 5000):
        d = rng.integers(-3, 4, n).astype(float)
        w = stats.wilcoxon(d)
        assert signed_rank_test(d) == pytest.approx((w.statistic, w.pvalue), rel=1e-12, abs=1e-300)


def test_it_matches_scipy_signed_rank_on_small_tied_samples():
    rng = np.random.default_rng(3)
    for n in (4, 7, 10, 12, 13):
        d = rng.integers(-2, 3, n).astype(float)
        d[0] = 1.0
        w = stats.wilcoxon(d)
        assert signed_rank_test(d) == pytest.approx((w.statistic, w.pvalue), rel=1e-12)


@pytest.mark.parametrize("v", DATASETS)
@pytest.mark.parametrize(
    "pairing, unit", [("rater_image", ["rater", "image"]), ("rater", ["rater"])]
)
def test_it_matches_scipy_friedman(v, pairing, unit):
    res = friedman(v, pairing=pairing).set_index("dataset")
    r = v[v["kind"] == "rating"]
    for ds, g in r.groupby("dataset"):
        wide = g.pivot_table(index=unit, columns="method", values="score", aggfunc="mean").dropna()
        assert res.loc[ds, "n_blocks"] == len(wide)
        if len(wide) < 2:
            assert np.isnan(res.loc[ds, "p"]) and "complete blocks" in res.loc[ds, "note"]
            continue
        f = stats.friedmanchisquare(*[wide[c] for c in wide.columns])
        assert res.loc[ds, "statistic"] == pytest.approx(f.statistic, rel=1e-12)
        assert res.loc[ds, "p"] == pytest.approx(f.pvalue, rel=1e-9, abs=1e-300)
        k = wide.shape[1]
        assert res.loc[ds, "kendall_w"] == pytest.approx(f.statistic / (len(wide) * (k - 1)))


def test_it_runs_mann_whitney_when_unpaired():
    v = DATASETS[1]
    res = pairwise_tests(v, pairing="none")
    r = v[v["kind"] == "rating"]
    r = r.groupby(["dataset", "image", "method", "rater"], as_index=False)["score"].mean()
    for _, row in res.sample(20, random_state=0).iterrows():
        g = r[r["dataset"] == row["dataset"]]
        x = g[g["method"] == row["method_a"]]["score"]
        y = g[g["method"] == row["method_b"]]["score"]
        u = stats.mannwhitneyu(x, y, alternative="two-sided")
        assert row["statistic"] == pytest.approx(u.statistic)
        assert row["p"] == pytest.approx(u.pvalue, rel=1e-12)
        assert row["effect"] == pytest.approx(2 * u.statistic / (len(x) * len(y)) - 1)
        assert row["test"] == "mannwhitneyu"


def test_it_marks_undefined_comparisons():
    v = pd.DataFrame(
        {
            "rater": ["a", "a", "b", "b", "c"],
            "dataset": "S",
            "image": "i",
            "method": ["x", "y", "x", "y", "z"],
            "score": [3, 3, 4, 4, 2],
        }
    )
    res = pairwise_tests(v).set_index(["method_a", "method_b"])
    assert "all paired differences are zero" in res.loc[("x", "y"), "note"]
    assert "no pairs" in res.loc[("x", "z"), "note"]
    assert res["p"].isna().all() and (res["note"] != "").all()
    f = friedman(v)
    assert np.isnan(f.loc[0, "p"]) and f.loc[0, "note"]


def test_it_rejects_unknown_options():
    with pytest.raises(ValueError, match="pairing"):
        pairwise_tests(DATASETS[0], pairing="image")
    with pytest.raises(ValueError, match="family"):
        pairwise_tests(DATASETS[0], family="study")


# The primary test: crossed random raters and images.


def test_crossed_tests_are_the_crossed_mean_of_each_pairs_differences():
    scores = null_scores(12, 15, replicates=3, n_methods=3, missing=0.2, seed=8)
    v = null_design(12, 15, replicates=3, n_methods=3, missing=0.2, seed=8)
    res = crossed_tests(v)
    assert len(res) == 3 * 3
    for k, (ds, g) in enumerate(res.groupby("dataset")):
        assert ds == f"null{k:03d}"
        for (a, b), row in zip([(0, 1), (0, 2), (1, 2)], g.itertuples(), strict=True):
            assert (row.method_a, row.method_b) == (f"m{a + 1}", f"m{b + 1}")
            d = scores[k, :, :, a] - scores[k, :, :, b]
            est = crossed_mean(d)
            want = t_test(est)
            assert row.mean_diff == pytest.approx(np.nanmean(d), abs=1e-12)
            assert row.mos_a - row.mos_b == pytest.approx(row.mean_diff, abs=1e-12)
            assert row.n_cells == np.sum(~np.isnan(d))
            got, ref = (
                (row.se, row.df, row.p, row.ci95_low),
                (est.se, est.df, want["p"], want["ci_low"]),
            )
            np.testing.assert_allclose(got, [float(x) for x in ref], rtol=1e-12)
        np.testing.assert_allclose(g["p_holm"], multipletests(g["p"], method="holm")[1])
    assert set(res["generalises_over"]) == {"raters and images"}


def test_crossed_tests_average_a_raters_repeats_into_one_cell():
    v = synthetic_votes(3, n_images=4, n_raters=10, repeats=8)
    r = v[v["kind"] == "rating"]
    res = crossed_tests(v).set_index(["dataset", "method_a", "method_b"])
    cell = r.groupby(["dataset", "method", "rater", "image"])["score"].mean()
    a = cell.loc[("Set5", "bicubic")]
    b = cell.loc[("Set5", "hr")]
    d = (a - b).dropna()
    assert res.loc[("Set5", "bicubic", "hr"), "mean_diff"] == pytest.approx(d.mean())


def test_crossed_tests_say_when_a_pair_cannot_generalise():
    one_image = pd.DataFrame(
        {
            "rater": ["a", "a", "b", "b", "c"],
            "image": "i",
            "method": ["x", "y", "x", "y", "z"],
            "score": [3, 3, 4, 2, 2],
        }
    ).assign(dataset="S")
    # Two raters, two images, every difference zero.
    rows = [(r, i, m) for r in "ab" for i in "ij" for m in "xy"]
    flat = pd.DataFrame(rows, columns=["rater", "image", "method"]).assign(dataset="T", score=3)
    v = pd.concat([one_image, flat], ignore_index=True)
    res = crossed_tests(v).set_index(["dataset", "method_a", "method_b"])
    assert "2 raters and 2 images" in res.loc[("S", "x", "y"), "note"]
    assert "no pairs" in res.loc[("S", "x", "z"), "note"]
    assert "equal" in res.loc[("T", "x", "y"), "note"]
    assert res["p"].isna().all() and not res["significant_holm"].any()
    assert all(v.startswith(ds) and "no verdict" in v for (ds, *_), v in res["verdict"].items())


def test_crossed_tests_withhold_verdicts_on_a_method_they_are_told_to():
    v = null_design(10, 10, n_methods=3, seed=2)
    res = crossed_tests(v, no_verdict={"m3": "m3 is a placeholder"})
    hit = res["method_b"] == "m3"
    assert res.loc[hit, "p"].isna().all() and (res.loc[hit, "note"] == "m3 is a placeholder").all()
    assert res.loc[~hit, "p"].notna().all()
    assert all("no verdict" in s for s in res.loc[hit, "verdict"])


def test_verdicts_read_as_sentences():
    sig = pd.DataFrame(
        {
            "dataset": ["BSD100", "BSD100", "BSD100"],
            "method_a": ["srresnet", "srgan", "srcnn"],
            "method_b": ["srgan", "hr", "selfexsr"],
            "generalises_over": "raters and images",
            "mos_a": [2.29, 3.56, 1.87],
            "mos_b": [3.56, 4.46, 1.89],
            "mean_diff": [-1.27, -0.9, -0.02],
            "ci95_low": [-1.49, -1.1, -0.2],
            "ci95_high": [-1.05, -0.7, 0.16],
            "p_holm": [0.0001, 0.0123, 0.81],
            "note": "",
        }
    )
    assert verdicts(sig) == [
        "BSD100: srgan is rated higher than srresnet (MOS 3.56 vs 2.29, difference 1.27, "
        "95% CI 1.05 to 1.49, over raters and images; p < 0.001, Holm).",
        "BSD100: hr is rated higher than srgan (MOS 4.46 vs 3.56, difference 0.90, "
        "95% CI 0.70 to 1.10, over raters and images; p = 0.012, Holm).",
        "BSD100: no significant difference between selfexsr and srcnn (MOS 1.89 vs 1.87, "
        "difference 0.02, 95% CI -0.16 to 0.20, over raters and images; p = 0.810, Holm).",
    ]


def test_on_null_studies_with_interactions_the_crossed_test_keeps_its_level():
    """The headline: pairs sharing raters and images are not independent. On null studies
    with method x image and method x rater interactions the rater x image Wilcoxon calls
    most pairs significant; the crossed test about 5%."""
    v = null_design(26, 100, replicates=60, method_image_sd=0.3, method_rater_sd=0.3, seed=11)
    crossed = crossed_tests(v)["significant_holm"].mean()
    paper = pairwise_tests(v)["significant_holm"].mean()
    assert crossed <= 0.12
    assert paper >= 0.4


def test_a_per_rater_test_on_few_tied_raters_names_its_permutation_p():
    """20 raters' mean differences with ties: scipy's normal approximation is replaced by seeded
    sign flips, named in p_method, and holds its level on nulls with ties."""
    rng = np.random.default_rng(5)
    d = np.round(rng.normal(0.0, 1.0, 20))
    assert signed_rank_method(d).startswith("sign-flip permutation")
    nulls = [signed_rank_test(np.round(rng.normal(0.0, 1.0, 20)))[1] for _ in range(300)]
    assert 0.02 <= np.mean(np.array(nulls) < 0.05) <= 0.08
    votes = synthetic_votes(3, n_images=4, profile="noisy")
    table = pairwise_tests(votes, pairing="rater")
    assert table["p_method"].str.len().gt(0).all() and "p_method" in table.columns
