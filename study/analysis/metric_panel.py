"""Which objective metric agrees with people, judged as ITU-T P.1401 (01/2020) judges models.

Each metric is mapped onto MOS by the VQEG 5-parameter logistic (:func:`.objective.fit_logistic`,
d = 5; where that fails, by a straight line, d = 2, as the note says) and judged on monotonicity
(SROCC, KROCC of the raw metric, raw sign), linearity (PLCC of the mapped metric, P.1401
§7.5.3), accuracy (rmse = sqrt(sum(Perror^2) / (N - d)), Perror = MOS - mapped metric, §7.5.1;
epsilon-insensitive rmse* = sqrt(sum(max(0, |Perror| - ci95)^2) / (N - d)), §7.7) and
consistency (outlier ratio: share of points with |Perror| > ci95, §7.5.2.2). ci95 is the
half-width of a point's 95% MOS interval, t(0.975, M - 1) s / sqrt(M) over its M votes (§7.4,
Appendix III); at the method level a point is a condition (dataset x method) whose MOS, s and M
pool all its votes (Appendix III.2) and whose metric value is the mean over its images.

A metric's "agreement" is its SROCC oriented by its direction (-SROCC when lower is better), so
one that correlates the wrong way ranks last, not first. Bootstrap intervals resample points
(percentile, seeded) with the mapping held at its fit on all points, so they omit the fit's own
uncertainty; KROCC's interval is Fisher's z with se sqrt(0.437 / (n - 4)), as objective.correlate.
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .mos import ci_halfwidth
from .objective import _fisher_ci, fit_logistic, vqeg_logistic
from .schema import STIMULUS, VotesError
from .significance import holm

D_LOGISTIC = 5  # parameters of the VQEG logistic: P.1401's d in N - d
LOWER_IS_BETTER = frozenset({"gmsd", "lpips", "dists", "niqe", "brisque"})
LABELS = {
    "psnr": "PSNR", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "vif": "VIFp", "fsim": "FSIMc",
    "gmsd": "GMSD", "haarpsi": "HaarPSI", "lpips": "LPIPS", "dists": "DISTS",
    "brisque": "BRISQUE", "niqe": "NIQE",
}  # fmt: skip
_CRITERIA = {
    "srocc": ("SROCC", "higher"), "plcc": ("PLCC", "higher"), "rmse": ("rmse", "lower"),
    "rmse_star": ("rmse*", "lower"), "outlier_ratio": ("outlier ratio", "lower"),
}  # fmt: skip
_STATS = tuple(_CRITERIA)


def label(metric: str) -> str:
    return LABELS.get(metric, metric.upper())


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Dot products along the last axis, without a temporary product array."""
    return np.einsum("...i,...i->...", u, v)


def p1401_errors(mos, predicted, ci95, d: int = D_LOGISTIC) -> dict:
    """rmse, rmse* and outlier ratio of mapped predictions (P.1401 §7.5.1, §7.7, §7.5.2.2).

    Along the last axis (one set of points, or one resample per row). NaN where N <= d, and
    rmse* and the outlier ratio NaN where a ci95 is undefined (a stimulus with one vote).
    """
    mos, predicted, ci95 = np.broadcast_arrays(
        *(np.asarray(a, float) for a in (mos, predicted, ci95))
    )
    n = mos.shape[-1]
    if not n > d:
        return dict.fromkeys(("rmse", "rmse_star", "outlier_ratio"), np.nan)
    err = np.abs(mos - predicted)
    undefined = ~np.isfinite(ci95 + predicted).all(axis=-1)
    over = np.maximum(err - ci95, 0)
    out = {
        "rmse": np.sqrt(_dot(err, err) / (n - d)),
        "rmse_star": np.where(undefined, np.nan, np.sqrt(_dot(over, over) / (n - d))),
        "outlier_ratio": np.where(undefined, np.nan, (err > ci95).mean(axis=-1)),
    }
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in out.items()}


def _validate(objective: pd.DataFrame, metrics) -> tuple[pd.DataFrame, list[str]]:
    if metrics is None:
        metrics = [c for c in objective.columns if c not in STIMULUS]
    missing = [c for c in (*STIMULUS, *metrics) if c not in objective.columns]
    if missing:
        raise VotesError(f"objective metrics lack column(s) {', '.join(missing)}")
    out = objective[[*STIMULUS, *metrics]].copy()
    out[list(STIMULUS)] = out[list(STIMULUS)].astype(str)
    for c in metrics:
        num = pd.to_numeric(out[c], errors="coerce")
        if (num.isna() & out[c].notna()).any():
            raise VotesError(f"metric column {c!r} holds values that are not numbers")
        out[c] = num.astype(float).replace([np.inf, -np.inf], np.nan)
    if out.duplicated(list(STIMULUS)).any():
        raise VotesError("objective metrics repeat a stimulus")
    return out, list(metrics)


def _points(stim: pd.DataFrame, objective: pd.DataFrame, metrics, level: str) -> pd.DataFrame:
    """dataset, [image,] method, mos, n, std, ci95 and the metric columns; a row per point."""
    need = [c for c in (*STIMULUS, "mos", "std", "n") if c not in stim.columns]
    if need:
        raise VotesError(f"MOS table lacks column(s) {', '.join(need)} (mos_per_stimulus output)")
    s = stim[[*STIMULUS, "mos", "std", "n"]].copy()
    s[list(STIMULUS)] = s[list(STIMULUS)].astype(str)
    m = s.merge(objective, on=list(STIMULUS), how="inner")
    if level == "method":
        # Appendix III.2: a condition's votes pooled; sums of squares rebuilt from n, mean, std.
        ss = (m["n"] - 1) * m["std"].fillna(0) ** 2 + m["n"] * m["mos"] ** 2
        g = m.assign(_sum=m["n"] * m["mos"], _ss=ss).groupby(["dataset", "method"], sort=True)
        m = g[metrics].mean()  # NaN (missing) values skipped
        m["n"] = g["n"].sum()
        m["mos"] = g["_sum"].sum() / m["n"]
        m["std"] = np.sqrt(((g["_ss"].sum() - m["n"] * m["mos"] ** 2) / (m["n"] - 1)).clip(0))
        m = m.reset_index()
    m["ci95"] = ci_halfwidth(m["std"].to_numpy(), m["n"].to_numpy(), "t")
    return m


def _judge(x: np.ndarray, y: np.ndarray, ci95: np.ndarray) -> tuple[dict, np.ndarray | None]:
    """Point estimates for one metric, and its values mapped onto MOS (None if not mapped)."""
    n = len(x)
    out = dict.fromkeys(
        ("d", "krocc", "krocc_ci_low", "krocc_ci_high", "plcc_raw", *_STATS), np.nan
    )
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        out["note"] = f"{'constant values' if n >= 3 else f'{n} point(s)'}: correlations undefined"
        return out, None
    out["srocc"] = float(stats.spearmanr(x, y).statistic)
    out["krocc"] = float(stats.kendalltau(x, y).statistic)
    # Fieller, Hartley & Pearson's se sqrt(0.437 / (n - 4)), as objective.correlate.
    out["krocc_ci_low"], out["krocc_ci_high"] = _fisher_ci(out["krocc"], n - 1, 0.437)
    out["plcc_raw"] = float(stats.pearsonr(x, y).statistic)
    p, note = fit_logistic(x, y)
    pred = None if p is None else vqeg_logistic(x, *p)
    if pred is not None and np.ptp(pred) > 0:
        steps = np.diff(pred[np.argsort(x, kind="stable")])
        monotone = np.all(steps >= -1e-12) or np.all(steps <= 1e-12)
        out["d"], out["note"] = D_LOGISTIC, "" if monotone else "fitted logistic is not monotonic"
    elif n < 6:
        out["note"] = f"{note} (PLCC, rmse, rmse*, outlier ratio empty)"
        return out, None
    else:
        # The optimiser's own words (in parentheses) stay out of a results table.
        why = note.split(" (")[0].split(", so ")[0] if note else "the fitted logistic is flat"
        pred, out["d"] = np.polyval(np.polyfit(x, y, 1), x), 2
        out["note"] = f"{why}: mapped by a straight line instead (P.1401 Appendix II, d = 2)"
    out |= p1401_errors(y, pred, ci95, out["d"]) | {"plcc": stats.pearsonr(pred, y).statistic}
    return out, pred


def _boot_ranks(v: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Average ranks of v[idx] within each row, O(B n): counts of each group of equal values."""
    _, groups = np.unique(v, return_inverse=True)
    b, k = idx.shape[0], int(groups.max()) + 1
    flat = (groups.astype(np.int32)[idx] + (np.arange(b, dtype=np.int32) * k)[:, None]).ravel()
    counts = np.bincount(flat, minlength=b * k).reshape(b, k)
    # A group's average rank: the values below it, plus the mean of 1..count.
    avg = np.cumsum(counts, axis=1) - (counts - 1) / 2
    return avg.ravel()[flat].reshape(idx.shape)


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _dot(a, b) / np.sqrt(_dot(a, a) * _dot(b, b))


def _resampled(both: np.ndarray, y: np.ndarray, n_boot: int, seed: int, cache: dict):
    """Resamples of the points `both` selects and MOS ranks in each, shared by all metrics."""
    key = both.tobytes()  # same seed, same points: same resamples, so pairs are paired
    if key not in cache:
        n = int(both.sum())
        idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n), dtype=np.int32)
        cache[key] = idx, _boot_ranks(y[both], idx)
    return cache[key]


def _on_common(fit, sign, both, y, ci, resampled) -> tuple[dict, dict]:
    """A metric's estimates and resampled `_STATS` (SROCC times `sign`) on the points `both`.

    A constant metric's correlations are NaN (scipy's warning about it is silenced: the
    performance table's note says so in words)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        warnings.simplefilter("ignore", stats.NearConstantInputWarning)
        return _on_common_points(fit, sign, both, y, ci, resampled)


def _on_common_points(fit, sign, both, y, ci, resampled) -> tuple[dict, dict]:
    _, x, pred, judged = fit
    xs, ys, cs, d = x[both], y[both], ci[both], judged["d"]
    point = dict.fromkeys(_STATS, np.nan) | {"d": d}
    point["srocc"] = sign * stats.spearmanr(xs, ys).statistic
    boot = {"srocc": sign * _row_pearson(_boot_ranks(xs, resampled[0]), resampled[1])}
    boot |= {k: np.full(len(resampled[0]), np.nan) for k in _STATS[1:]}
    if pred is not None:
        ps, idx = pred[both], resampled[0]
        point |= p1401_errors(ys, ps, cs, d) | {"plcc": stats.pearsonr(ps, ys).statistic}
        boot |= p1401_errors(ys[idx], ps[idx], cs[idx], d)
        boot["plcc"] = _row_pearson(ps[idx], ys[idx])
    return point, boot


def _ci(values) -> tuple[float, float]:
    ok = np.asarray(values)[np.isfinite(values)]
    return tuple(np.quantile(ok, [0.025, 0.975])) if len(ok) else (np.nan, np.nan)


def _fits(stim, objective, metrics, levels):
    """Per level and dataset scope (pooled "all" first when there are several datasets): MOS,
    ci95 and each metric's (valid mask, values, mapped values or None, point estimates)."""
    obj, metrics = _validate(objective, metrics)
    for level in levels:
        if level not in ("stimulus", "method"):
            raise ValueError(f"level must be 'stimulus' or 'method', got {level!r}")
        points = _points(stim, obj, metrics, level)
        scopes = [("all", points)] if points["dataset"].nunique() > 1 else []
        for ds, g in scopes + list(points.groupby("dataset", sort=True)):
            y, ci = g["mos"].to_numpy(float), g["ci95"].to_numpy(float)
            fits = {}
            for m in metrics:
                x = g[m].to_numpy(float)
                ok = np.isfinite(x) & np.isfinite(y)
                judged, mapped = _judge(x[ok], y[ok], ci[ok])
                pred = np.full(len(x), np.nan)
                pred[ok] = np.nan if mapped is None else mapped
                fits[m] = (ok, x, None if mapped is None else pred, judged)
            yield ds, level, y, ci, fits


_PERFORMANCE = [
    "dataset", "level", "metric", "direction", "n", "n_excluded", "agreement", "rank", "d",
    "krocc", "krocc_ci_low", "krocc_ci_high", "plcc_raw",
    *(f"{k}{end}" for k in _STATS for end in ("", "_ci_low", "_ci_high")), "note",
]  # fmt: skip


def metric_performance(
    stim: pd.DataFrame,
    objective: pd.DataFrame,
    metrics=None,
    lower_better=LOWER_IS_BETTER,
    n_boot: int = 1000,
    seed: int = 0,
    levels=("stimulus", "method"),
) -> pd.DataFrame:
    """How well each metric predicts MOS: P.1401's statistics with bootstrap 95% intervals.

    Parameters
    ----------
    stim : pandas.DataFrame
        :func:`study.analysis.mos_per_stimulus` output (``dataset, image, method, n, mos, std``).
    objective : pandas.DataFrame
        ``dataset, image, method`` and a column per metric (``metrics``, default: all others);
        NaN or inf = missing: that metric uses the other points and counts those it left out.
    lower_better, n_boot, seed
        Metrics for which lower is better; bootstrap resamples (0: none) and their seed.

    Returns
    -------
    pandas.DataFrame
        A row per ``dataset`` ("all" pooled when several), ``level`` ("stimulus", "method") and
        ``metric``: ``direction`` ("higher"/"lower" is better), ``n`` (points used),
        ``n_excluded`` (metric missing), ``agreement`` (SROCC oriented by direction), ``rank``
        (1 = best agreement in its dataset and level), ``d`` (mapping's parameters), ``krocc,
        plcc_raw`` (raw sign), then ``srocc`` (raw sign), ``plcc`` (mapped), ``rmse, rmse_star,
        outlier_ratio``, each with ``_ci_low, _ci_high``; ``note`` says in words what is amiss.
    """
    rows = []
    for ds, level, y, ci, fits in _fits(stim, objective, metrics, levels):
        cache: dict = {}
        for m, (ok, _, _, judged) in fits.items():
            sign = -1 if m in lower_better else 1
            n = int(ok.sum())
            row = {"dataset": ds, "level": level, "metric": m, "n": n, "n_excluded": len(ok) - n}
            row |= judged | {"direction": "lower" if sign < 0 else "higher"}
            row["agreement"] = sign * judged["srocc"]
            boot = {}
            if n_boot and np.isfinite(judged["srocc"]):
                boot = _on_common(fits[m], 1, ok, y, ci, _resampled(ok, y, n_boot, seed, cache))[1]
            for k in _STATS:
                row[f"{k}_ci_low"], row[f"{k}_ci_high"] = _ci(boot.get(k, np.nan))
            rows.append(row)
    out = pd.DataFrame(rows, columns=_PERFORMANCE)
    out["rank"] = out.groupby(["dataset", "level"])["agreement"].rank(ascending=False, method="min")
    return out


def _boot_p(point: float, boot: np.ndarray) -> float:
    """Two-sided p of a zero difference from its bootstrap standard error (normal approximation)."""
    boot = np.asarray(boot)[np.isfinite(boot)]
    se = boot.std(ddof=1) if len(boot) > 1 else np.nan
    return float(2 * stats.norm.sf(abs(point) / se)) if se > 0 else np.nan


def _pair_rows(a, b, va, vb, ba, bb, n) -> list[dict]:
    """The tests of P.1401 §7.6-7.7 and the paired bootstrap, a row per criterion and test."""
    rows = [(c, "paired bootstrap", _boot_p(va[c] - vb[c], ba[c] - bb[c])) for c in _STATS]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.arctanh(va["plcc"]) - np.arctanh(vb["plcc"])) / np.sqrt(2 / (n - 3))
        rows.append(("plcc", "Fisher z (P.1401 7.6.1)", 2 * stats.norm.sf(abs(z))))
        for c, clause in (("rmse", "7.6.4"), ("rmse_star", "7.7")):
            (hi, d_hi), (lo, d_lo) = sorted([(va[c], va["d"]), (vb[c], vb["d"])], reverse=True)
            p = stats.f.sf(np.float64(hi) ** 2 / lo**2, n - d_hi, n - d_lo)
            rows.append((c, f"F-test (P.1401 {clause})", p))
        pa, pb = va["outlier_ratio"], vb["outlier_ratio"]
        z = (pa - pb) / np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n)
        rows.append(("outlier_ratio", "z-test (P.1401 7.6.2)", 2 * stats.norm.sf(abs(z))))
    return [
        {"metric_a": a, "metric_b": b, "n": n, "criterion": c, "value_a": va[c],
         "value_b": vb[c], "difference": va[c] - vb[c], "test": test, "p_value": p}
        for c, test, p in rows
    ]  # fmt: skip


_COMPARISON = [
    "dataset", "level", "metric_a", "metric_b", "n", "criterion", "value_a", "value_b",
    "difference", "test", "p_value", "p_holm", "better",
]  # fmt: skip


def compare_metrics(
    stim: pd.DataFrame,
    objective: pd.DataFrame,
    metrics=None,
    lower_better=LOWER_IS_BETTER,
    n_boot: int = 1000,
    seed: int = 0,
    levels=("stimulus", "method"),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Is metric A significantly better than metric B at predicting MOS? Every pair, every test.

    A pair is judged on the points where both metrics exist, each with its own mapping. P.1401's
    tests: Fisher z of PLCC (§7.6.1), F of rmse and rmse* (§7.6.4, §7.7: p = P(F >= larger^2 /
    smaller^2) on N - d degrees of freedom each), z of outlier ratios (§7.6.2); they treat the two
    as independent samples though both score the same stimuli. The paired bootstrap does not:
    both metrics are recomputed on the same resampled stimuli, and p comes from the bootstrap
    standard error of the difference. SROCC is oriented (higher agrees better, either direction).

    Returns
    -------
    pandas.DataFrame
        ``dataset, level, metric_a, metric_b, n`` (common points), ``criterion`` (srocc, plcc,
        rmse, rmse_star, outlier_ratio), ``value_a, value_b, difference`` (a - b), ``test``,
        ``p_value``, ``p_holm`` (Holm over the pairs of a dataset, level, criterion and test:
        P.1401 §7.6.5) and ``better`` (the better metric where ``p_holm < alpha``, else empty).
    """
    rows = []
    for ds, level, y, ci, fits in _fits(stim, objective, metrics, levels):
        cache: dict = {}
        for a, b in combinations(fits, 2):
            both = fits[a][0] & fits[b][0]
            if both.sum() <= D_LOGISTIC:
                continue
            key, resampled = both.tobytes(), _resampled(both, y, n_boot, seed, cache)
            for m in (a, b):
                if (m, key) not in cache:
                    sign = -1 if m in lower_better else 1
                    cache[m, key] = _on_common(fits[m], sign, both, y, ci, resampled)
            (va, ba), (vb, bb) = cache[a, key], cache[b, key]
            pair = _pair_rows(a, b, va, vb, ba, bb, int(both.sum()))
            rows += [{"dataset": ds, "level": level} | r for r in pair]
    out = pd.DataFrame(rows, columns=_COMPARISON)
    family = out.groupby(["dataset", "level", "criterion", "test"], sort=False)["p_value"]
    out["p_holm"] = family.transform(lambda p: holm(p.to_numpy()))
    higher = out["criterion"].map(lambda c: _CRITERIA[c][1] == "higher")
    a_wins = np.where(higher, out["difference"] > 0, out["difference"] < 0)
    winner = np.where(a_wins, out["metric_a"], out["metric_b"])
    out["better"] = np.where(out["p_holm"] < alpha, winner, "")
    return out


def summary_sentence(
    comparisons: pd.DataFrame,
    metric_a: str,
    metric_b: str,
    dataset: str | None = None,
    level: str = "stimulus",
    criterion: str = "srocc",
    test: str = "paired bootstrap",
) -> str:
    """One sentence for a paper: which of two metrics predicts MOS better, with the evidence.

    E.g. "On this study, LPIPS predicts MOS better than PSNR (SROCC 0.81 vs 0.52, paired
    bootstrap p = 0.003)." ``dataset`` defaults to the pooled "all" (or the only dataset).
    """
    c, pair = comparisons, [metric_a, metric_b]
    c = c[(c["level"] == level) & (c["criterion"] == criterion) & (c["test"] == test)]
    c = c[c["metric_a"].isin(pair) & c["metric_b"].isin(pair)]
    if dataset is None and len(c):
        dataset = "all" if (c["dataset"] == "all").any() else c["dataset"].iloc[0]
    c = c[c["dataset"] == dataset]
    if c.empty:
        raise ValueError(f"no {test} comparison of {metric_a} and {metric_b} on {criterion}")
    r = c.iloc[0]
    values = {r["metric_a"]: r["value_a"], r["metric_b"]: r["value_b"]}
    first = r["better"] or metric_a
    second = metric_b if first == metric_a else metric_a
    where = "On this study" if dataset == "all" else f"On {dataset}"
    evidence = f"{_CRITERIA[criterion][0]} {values[first]:.2f} vs {values[second]:.2f}, {test} "
    evidence += "p < 0.001" if r["p_holm"] < 0.001 else f"p = {r['p_holm']:.3f}"
    evidence += " after Holm's adjustment" if r["p_holm"] != r["p_value"] else ""
    if r["better"]:
        return f"{where}, {label(first)} predicts MOS better than {label(second)} ({evidence})."
    return (
        f"{where}, {label(first)} and {label(second)} predict MOS about equally well "
        f"({evidence}: not significant)."
    )
