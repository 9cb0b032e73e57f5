"""The P.1401 metric panel: against scipy, hand-made cases and synthetic metrics of known quality."""

import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from study.analysis import mos_per_stimulus, mos_table, paper_design, simulate_votes
from study.analysis.mapping import fit_logistic, logistic_d, vqeg_logistic
from study.analysis.metric_comparison import summary_sentence
from study.analysis.metric_panel import (
    compare_metrics,
    metric_performance,
    p1401_errors,
)
from study.analysis.metric_panel_plots import panel_figure
from study.analysis.panel_report import write_metric_panel
from study.analysis.schema import VotesError


def synthetic(n=300, noise=None, seed=0, datasets=("A", "B")):
    """Stimuli of known quality q; MOS = q + its sampling error; metric k = exp(q / 2) + noise_k.

    `noise` maps a metric name to the sd of its noise on the quality scale (a negative sd makes
    a lower-is-better metric).
    """
    noise = noise or {"good": 0.15, "poor": 0.6}
    rng = np.random.default_rng(seed)
    q = rng.uniform(1.3, 4.7, n)
    keys = pd.DataFrame(
        {
            "dataset": np.array(datasets)[np.arange(n) % len(datasets)],
            "image": [f"img{i // 8:03d}" for i in range(n)],
            "method": [f"m{i % 8}" for i in range(n)],
        }
    )
    stim = keys.assign(n=20, std=0.8, mos=q + rng.normal(0, 0.8 / np.sqrt(20), n))
    obj = keys.copy()
    for name, sd in noise.items():
        obj[name] = np.sign(sd) * np.exp((q + rng.normal(0, abs(sd), n)) / 2)
    return stim, obj


def rows(table, **where):
    for k, v in where.items():
        table = table[table[k] == v]
    return table


def test_it_matches_scipy_and_the_p1401_formulas():
    stim, obj = synthetic()
    obj.loc[obj.index[:7], "poor"] = np.nan
    obj.loc[obj.index[7], "poor"] = np.inf
    perf = metric_performance(stim, obj, n_boot=50)
    m = stim.merge(obj, on=["dataset", "image", "method"])
    common = m[np.isfinite(m[["good", "poor"]]).all(axis=1)]  # one set of stimuli for both
    for _, r in rows(perf, level="stimulus").iterrows():
        g = common if r["dataset"] == "all" else common[common["dataset"] == r["dataset"]]
        x, y = g[r["metric"]].to_numpy(), g["mos"].to_numpy()
        assert r["n"] == len(g)
        assert r["n_excluded"] == r["n_missing"] == (8 if r["dataset"] == "all" else 4)
        assert r["srocc"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert r["krocc"] == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
        assert r["plcc_raw"] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
        assert r["srocc_p"] == pytest.approx(stats.spearmanr(x, y).pvalue)  # n > 50: asymptotic
        p, _ = fit_logistic(x, y)
        if p is not None:
            pred, d = vqeg_logistic(x, *p), logistic_d(p)
        else:  # where the logistic does not converge, a straight line (P.1401 Appendix II)
            pred, d = np.polyval(np.polyfit(x, y, 1), x), 2
            assert r["note"].startswith("logistic fit failed: mapped by a straight line")
        assert r["d"] == d
        assert r["plcc"] == pytest.approx(stats.pearsonr(pred, y).statistic, abs=1e-12)
        # P.1401 7.5.1: N - d, d the parameters of the mapping.
        assert r["rmse"] == pytest.approx(np.sqrt(np.sum((y - pred) ** 2) / (len(y) - d)))
        ci95 = stats.t.ppf(0.975, 19) * 0.8 / np.sqrt(20)
        assert r["outlier_ratio"] == pytest.approx(np.mean(np.abs(y - pred) > ci95))
        assert r["srocc_ci_low"] < r["srocc"] < r["srocc_ci_high"]
        assert r["rmse_ci_low"] < r["rmse"] < r["rmse_ci_high"]
    poor = rows(perf, metric="poor", level="stimulus").set_index("dataset")["note"]
    assert poor["all"] == "lacks 8 stimuli, so they are left out of every metric"


def test_it_computes_rmse_star_and_outliers_by_hand():
    mos = np.array([3.0, 4.0, 2.0, 1.5, 3.5, 4.5, 2.5])
    pred = np.array([3.2, 3.0, 2.1, 2.5, 3.5, 4.0, 2.5])
    ci95 = np.array([0.3, 0.4, 0.3, 0.6, 0.3, 0.6, 0.3])
    # |err| = .2 1 .1 1 0 .5 0; beyond ci95: point 2 (1 > .4) and point 4 (1 > .6) only.
    got = p1401_errors(mos, pred, ci95, d=1)
    assert got["outlier_ratio"] == pytest.approx(2 / 7)
    assert got["rmse"] == pytest.approx(np.sqrt((0.04 + 1 + 0.01 + 1 + 0.25) / 6))
    assert got["rmse_star"] == pytest.approx(np.sqrt((0.6**2 + 0.4**2) / 6))
    assert np.isnan(p1401_errors(mos, pred, np.where(ci95 > 0.5, np.nan, ci95))["rmse_star"])
    assert np.isnan(p1401_errors(mos[:5], pred[:5], ci95[:5])["rmse"])  # N <= d


def test_its_method_points_pool_the_votes_as_mos_table_does():
    design = paper_design()
    design = design[design["image"].isin(["img000", "img001", "img002", "img003"])]
    votes = simulate_votes(design, n_raters=10, seed=4, missing=0.1)
    stim = mos_per_stimulus(votes)
    obj = stim[["dataset", "image", "method"]].assign(metric=stim["mos"] + 0.1)
    perf = metric_performance(stim, obj, levels=("method",), n_boot=0)
    pooled = mos_table(votes).assign(half=lambda t: t["ci95_high"] - t["mos"])
    # Appendix III.2 from n, mean and std per stimulus: the same MOS and interval as the votes.
    from study.analysis.metric_panel import _points, _stimuli

    marked, _ = _stimuli(stim, obj, ["metric"])
    points = _points(marked, ["metric"], "method").merge(pooled, on=["dataset", "method"])
    assert points["mos_x"].to_numpy() == pytest.approx(points["mos_y"].to_numpy(), abs=1e-12)
    assert points["ci95"].to_numpy() == pytest.approx(points["half"].to_numpy(), abs=1e-12)
    methods = pooled[pooled["method"] != "hr"].groupby("dataset").size()  # reference left out
    per_dataset = perf[perf["dataset"] != "all"].set_index("dataset")["n"]
    assert per_dataset.to_dict() == methods.to_dict()


def test_it_orients_lower_is_better_metrics_and_ranks_by_agreement():
    stim, obj = synthetic(noise={"good": 0.15, "gmsd_like": -0.3, "wrong_way": -0.3})
    perf = metric_performance(stim, obj, lower_better={"gmsd_like"}, n_boot=0, levels=("stimulus",))
    r = rows(perf, dataset="all").set_index("metric")
    assert r.loc["gmsd_like", "srocc"] < 0 < r.loc["gmsd_like", "agreement"]
    assert r.loc["gmsd_like", "direction"] == "lower"
    # Declared higher-is-better but falling with quality: it agrees worst, so ranks last.
    assert r.loc["wrong_way", "agreement"] < 0
    assert r["rank"].to_dict() == {"good": 1, "gmsd_like": 2, "wrong_way": 3}


def test_it_finds_the_better_metric_significantly_better():
    stim, obj = synthetic(n=400, noise={"good": 0.15, "poor": 0.6, "gmsd_like": -0.6})
    cmp = compare_metrics(stim, obj, lower_better={"gmsd_like"}, n_boot=500)
    top = rows(cmp, dataset="all", level="stimulus")
    for metric_b in ("poor", "gmsd_like"):
        pair = rows(top, metric_a="good", metric_b=metric_b)
        assert set(pair["better"]) == {"good"}, pair[["criterion", "test", "p_value"]]
    sentence = summary_sentence(cmp, "poor", "good")
    assert sentence.startswith("On this study, GOOD predicts MOS better than POOR (SROCC 0.9")
    assert "paired bootstrap p" in sentence and sentence.endswith(").")


def test_it_does_not_call_equally_good_metrics_different():
    calls = 0
    for seed in range(20):
        stim, obj = synthetic(n=200, noise={"one": 0.4, "two": 0.4}, seed=seed, datasets=("A",))
        cmp = compare_metrics(stim, obj, n_boot=300, levels=("stimulus",))
        calls += (rows(cmp, test="paired bootstrap", criterion="srocc")["better"] != "").sum()
    assert calls <= 3  # 5% of 20 expected by chance
    assert "about equally well" in summary_sentence(cmp, "one", "two", dataset="A")


def test_its_bootstrap_interval_covers_the_true_correlation():
    rho = 0.6
    truth = 6 / np.pi * np.arcsin(rho / 2)  # Spearman of a bivariate normal (Pearson 1907)
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(40):
        xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=150)
        stim = pd.DataFrame({"dataset": "A", "image": np.arange(150), "method": "m"})
        obj = stim.assign(metric=xy[:, 0])
        stim = stim.assign(n=10, std=1.0, mos=xy[:, 1])
        r = metric_performance(stim, obj, n_boot=400, levels=("stimulus",)).iloc[0]
        covered += r["srocc_ci_low"] <= truth <= r["srocc_ci_high"]
    assert covered >= 34  # nominal 95% of 40 = 38


def test_a_metric_with_too_few_points_says_so_in_words():
    stim, obj = synthetic(n=40, datasets=("A",))
    obj["flat"] = 1.0
    obj["none"] = np.nan  # not computed at all: left out rather than emptying the panel
    perf = metric_performance(stim, obj, n_boot=100, levels=("stimulus",)).set_index("metric")
    assert "constant values" in perf.loc["flat", "note"]
    assert np.isfinite(perf.loc["good", "plcc"]) and perf.loc["good", "note"] == ""
    assert perf.loc["none", "n"] == 0 and perf.loc["good", "n"] == 40
    assert perf.loc["none", "note"] == "no value on any stimulus: left out of the panel"
    # A metric with 4 values leaves 4 stimuli to judge every metric on.
    obj["sparse"] = np.where(np.arange(40) < 4, obj["good"], np.nan)
    perf = metric_performance(stim, obj, n_boot=100, levels=("stimulus",)).set_index("metric")
    assert (perf.loc[["good", "poor", "sparse"], "n"] == 4).all()
    assert (perf.loc[["good", "poor", "sparse"], "n_missing"] == 36).all()
    assert perf.loc["sparse", "note"].startswith("fewer than 6 points")
    assert perf.loc["sparse", "note"].endswith(
        "lacks 36 stimuli, so they are left out of every metric"
    )
    assert np.isnan(perf.loc["good", "plcc"])


def test_a_failing_fit_falls_back_to_a_line_and_says_so_in_words(monkeypatch):
    def no_fit(*args, **kwargs):
        raise ValueError("Residuals are not finite in the initial point.")

    monkeypatch.setattr("scipy.optimize.leastsq", no_fit)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 12))
    assert fit_logistic(x, y)[0] is None
    stim = pd.DataFrame({"dataset": "A", "image": np.arange(12), "method": "m"})
    obj = stim.assign(noise=x)
    stim = stim.assign(n=5, std=rng.uniform(0.5, 1, 12), mos=y)
    r = metric_performance(stim, obj, n_boot=50).iloc[0]
    assert r["note"] == (
        "logistic fit failed: mapped by a straight line instead (P.1401 Appendix II, d = 2)"
    )
    assert r["d"] == 2 and r["plcc"] == pytest.approx(abs(r["plcc_raw"]))


def test_it_refuses_tables_it_cannot_read():
    stim, obj = synthetic(n=20)
    with pytest.raises(VotesError, match="lack column"):
        metric_performance(stim, obj.drop(columns="image"))
    with pytest.raises(VotesError, match="not numbers"):
        metric_performance(stim, obj.assign(good="high"))
    with pytest.raises(VotesError, match="std"):
        metric_performance(stim.drop(columns="std"), obj)


def test_it_judges_a_paper_size_panel_quickly():
    # 1,128 stimuli (the paper's design) x 8 metrics, 1,000 resamples: see the report's figures.
    design = paper_design()
    noise = {f"m{k}": s for k, s in enumerate((0.2, -0.3, 0.5, 0.6, -0.8, 1.0, 1.2, -1.5))}
    stim, obj = synthetic(n=len(design), noise=noise)
    stim[["dataset", "image", "method"]] = obj[["dataset", "image", "method"]] = design.to_numpy()
    lower = {m for m, s in noise.items() if s < 0}
    t0 = time.perf_counter()
    perf = metric_performance(stim, obj, lower_better=lower, levels=("stimulus",))
    elapsed = time.perf_counter() - t0
    assert len(perf) == 8 * 4 and perf["srocc_ci_low"].notna().all()
    assert elapsed < 10, f"{elapsed:.1f} s"  # a guard, not the benchmark (~1 s on 2 cores)


def test_it_draws_the_panel(tmp_path):
    stim, obj = synthetic(noise={"good": 0.15, "poor": 0.6, "gmsd_like": -0.3})
    png = panel_figure(stim, obj, ["good", "poor", "gmsd_like"], tmp_path / "panel.png")
    with Image.open(png) as im:
        assert im.size[0] > im.size[1] > 100
    pdf = panel_figure(stim, obj, ["good"], tmp_path / "panel.pdf", level="method", dataset="A")
    assert pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match="no dataset"):
        panel_figure(stim, obj, ["good"], tmp_path / "x.png", dataset="Z")


def test_a_panel_with_no_metric_value_yet_is_left_out_and_the_rest_is_drawn(tmp_path):
    """Metrics still being computed: every metric column empty. The report's figures are drawn
    without the panel (it crashed the whole report with a ZeroDivisionError before)."""
    from study.analysis.panel_report import draw_metric_panel

    stim, obj = synthetic()
    obj = obj.assign(psnr=np.nan, ssim=np.nan, good=np.nan, poor=np.nan)
    with pytest.raises(ValueError, match="no metric has a value"):
        panel_figure(stim, obj, ["good", "poor"], tmp_path / "panel.svg")
    assert draw_metric_panel(stim, obj, tmp_path, ("svg",)) == {}
    obj.loc[:20, "good"] = 1.0  # a first value: the panel is drawn again
    assert draw_metric_panel(stim, obj, tmp_path, ("svg",)) == {
        "metric_panel.svg": tmp_path / "metric_panel.svg"
    }


def with_reference(stim, obj, lower=()):
    """The HR reference beside each image, as a campaign has it: rated high, PSNR infinite, every
    other metric at its best (full-reference metrics score it perfectly by construction)."""
    keys = stim[["dataset", "image"]].drop_duplicates().assign(method="hr")
    ref_obj = keys.copy()
    for c in obj.columns.drop(["dataset", "image", "method"]):
        ref_obj[c] = obj[c].min() if c in lower else (np.inf if c == "psnr" else obj[c].max())
    ref_stim = keys.assign(n=20, std=0.6, mos=4.4)
    return pd.concat([stim, ref_stim], ignore_index=True), pd.concat([obj, ref_obj])


class Drawn:
    """What panel_figure put on its axes: titles and the curves' points."""

    def __init__(self, monkeypatch):
        import matplotlib.axes

        self.titles, self.curves = [], []
        title, plot = matplotlib.axes.Axes.set_title, matplotlib.axes.Axes.plot

        def set_title(ax, text, *args, **kwargs):
            self.titles.append(text)
            return title(ax, text, *args, **kwargs)

        def draw(ax, x, y, *args, **kwargs):
            self.curves.append((np.asarray(x), np.asarray(y)))
            return plot(ax, x, y, *args, **kwargs)

        monkeypatch.setattr(matplotlib.axes.Axes, "set_title", set_title)
        monkeypatch.setattr(matplotlib.axes.Axes, "plot", draw)


def test_every_output_judges_every_metric_on_the_same_stimuli(tmp_path, monkeypatch):
    noise = {"psnr": 0.5, "ssim": 0.3, "ms_ssim": 0.25, "gmsd": -0.4}
    stim, obj = with_reference(*synthetic(n=400, noise=noise), lower={"gmsd"})
    obj.loc[obj.index[[3, 50]], "ms_ssim"] = np.nan  # failed on two stimuli
    metrics = list(noise)
    files = {}
    sentences = write_metric_panel(lambda name, df: files.update({name: df}), stim, obj, n_boot=200)
    perf, cmp = files["metric_panel.csv"], files["metric_comparison.csv"]
    # One set of points per dataset and level: no HR reference, no stimulus lacking a metric.
    n = perf.groupby(["dataset", "level"])["n"].agg(["min", "max"])
    assert (n["min"] == n["max"]).all()
    top = rows(perf, dataset="all", level="stimulus").set_index("metric")
    assert (top["n"] == 398).all() and (top["n_reference"] == stim["method"].eq("hr").sum()).all()
    assert (top["n_missing"] == 2).all()
    assert (rows(perf, dataset="A", level="method")["n_reference"] == 1).all()
    assert rows(perf, dataset="A", level="method")["p_method"].str.startswith("exact").all()
    # The comparisons quote the panel's own values on its own points.
    for (ds, level), c in cmp.groupby(["dataset", "level"]):
        p = rows(perf, dataset=ds, level=level).set_index("metric")
        assert (c["n"] == p["n"].iloc[0]).all()
        for side in ("a", "b"):
            srocc = c[c["criterion"] == "srocc"]
            want = p.loc[srocc[f"metric_{side}"], "agreement"].to_numpy()
            assert srocc[f"value_{side}"].to_numpy() == pytest.approx(want, abs=1e-12)
            for crit in ("plcc", "rmse", "outlier_ratio"):
                got = c[c["criterion"] == crit]
                want = p.loc[got[f"metric_{side}"], crit].to_numpy()
                assert got[f"value_{side}"].to_numpy() == pytest.approx(want, nan_ok=True)
    # The ranking: best agreement first, listed in that order.
    assert list(top["rank"]) == sorted(top["rank"])
    assert list(top.index) == list(top["agreement"].sort_values(ascending=False).index)
    # The manifest's sentences carry the panel's numbers and points.
    for metric, sentence in zip(metrics[2:], sentences, strict=True):
        for m in (metric, "psnr"):
            assert f"{top.loc[m, 'agreement']:.2f}" in sentence
        assert "on 398 stimuli" in sentence
    # The live page's table (no bootstrap) has the same values and ranks.
    live = {}
    write_metric_panel(lambda name, df: live.update({name: df}), stim, obj, full=False)
    same = ["dataset", "level", "metric", "n", "agreement", "rank", "plcc", "rmse"]
    pd.testing.assert_frame_equal(live["metric_panel.csv"][same], perf[same])
    assert "metric_comparison.csv" not in live
    # The figure: the same ranks, agreements and n, in rank order.
    drawn = Drawn(monkeypatch)
    panel_figure(stim, obj, metrics, tmp_path / "panel.png", lower_better={"gmsd"})
    want = [f"#{int(r['rank'])} " for _, r in top.iterrows()]
    assert [t[: len(w)] for t, w in zip(drawn.titles, want, strict=True)] == want
    for t, (_, r) in zip(drawn.titles, top.iterrows(), strict=True):
        assert f"agreement {r['agreement']:.2f}" in t and t.endswith(f"n = {r['n']}")


def bent(n=300, seed=0):
    """A metric MOS rises and then falls along (an inverted U), and a logistic one against a
    contrary trend: the 5-parameter logistic bends back within both."""
    stim, obj = synthetic(n=n, noise={"good": 0.2}, seed=seed, datasets=("A",))
    t = (stim["mos"] - stim["mos"].min()) / np.ptp(stim["mos"])
    rng = np.random.default_rng(seed)
    obj["hump"] = np.where(rng.uniform(size=n) < 0.5, t, 2 - t) + rng.normal(0, 0.05, n)
    obj["contrary"] = -0.5 * t + (t > 0.5) + rng.normal(0, 0.05, n)
    return stim, obj


def monotonic(x, y):
    steps = np.diff(np.asarray(y)[np.argsort(x, kind="stable")])
    return bool(np.all(steps >= -1e-12) or np.all(steps <= 1e-12))


def test_its_mappings_and_their_curves_are_monotonic(tmp_path, monkeypatch):
    from study.analysis.metric_panel import _fits

    stim, obj = bent()
    scopes, _ = _fits(stim, obj, ["good", "hump", "contrary"], ["stimulus", "method"])
    for scope in scopes:
        for fit in scope.fits.values():
            grid = np.linspace(fit.x.min(), fit.x.max(), 4001)
            assert monotonic(grid, vqeg_logistic(grid, *fit.params))
    perf = metric_performance(stim, obj, n_boot=0).set_index(["level", "metric"])
    assert not perf["note"].str.startswith("fitted logistic is not monotonic").any()
    hump = perf.loc[("stimulus", "hump")]  # the 5-parameter logistic bent back: replaced
    assert hump["d"] in (2, 4)
    assert hump["note"].startswith("the 5-parameter logistic was not monotonic over the data")
    drawn = Drawn(monkeypatch)
    panel_figure(stim, obj, ["good", "hump", "contrary"], tmp_path / "p.png")
    assert len(drawn.curves) == 3
    assert all(monotonic(x, y) for x, y in drawn.curves)


def _least_squares_lm(x, y, p0, free, cap):
    """The fit as scipy.optimize.least_squares(method="lm") makes it, all five parameters."""
    import warnings

    from scipy import optimize

    from study.analysis.mapping import _logistic_jacobian, vqeg_logistic

    start = np.array(p0, dtype=float)

    def full(b):
        p = start.copy()
        p[free] = b
        return p

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        b = optimize.least_squares(
            lambda b: vqeg_logistic(x, *full(b)) - y,
            start[free],
            jac=lambda b: _logistic_jacobian(x, *full(b))[:, free],
            method="lm",
            max_nfev=cap,
        ).x
    return full(b)


def test_the_logistic_fit_is_scipys_least_squares_to_the_last_bit():
    """The fit calls MINPACK through leastsq (no bookkeeping per evaluation) with the settings
    least_squares(method="lm") uses: the same iterates, whatever the data's shape."""
    from study.analysis.mapping import _least_squares

    rng = np.random.default_rng(3)
    for k in range(40):
        n = int(rng.integers(6, 600))
        x = rng.normal(size=n)
        shape = [
            rng.normal(3, 0.5, n),
            3 + 1.5 * np.tanh(x * rng.uniform(0.2, 3)),
            3 + np.sin(2 * x),
        ]
        y = shape[k % 3] + rng.normal(0, 0.2, n)
        for p0, free, cap in (([np.ptp(y), 1.0, 0.0, 0.0, y.mean()], [0, 1, 2, 3, 4], 200),
                              ([1.0, 1.0, 0.0, 0.0, y.mean()], [0, 1, 2, 4], 60)):  # fmt: skip
            want = _least_squares_lm(x, y, p0, free, cap)
            assert np.array_equal(_least_squares(x, y, p0, free, cap), want), (k, free)
