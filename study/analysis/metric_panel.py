"""Which objective metric agrees with people, judged as ITU-T P.1401 (01/2020) judges models.

Every metric is judged on one set of points, the same for all (:func:`.objective.mark_excluded`):
the HR reference is left out (a full-reference metric scores it perfectly by construction),
and so is a stimulus that lacks any metric's value (a metric with no value at all is left out
of the panel instead, so that it cannot empty it). The statistics, ranks, comparisons, the
manifest's sentences and the figure all come from that one judgement (:func:`judge_panel`).

Each metric is mapped onto MOS by a monotonic VQEG logistic (:func:`.mapping.fit_logistic`:
5 parameters; 4 with b4 = 0, or a straight line, where the 5-parameter curve would bend back
within the data; a straight line, d = 2, where the fit fails, as the note says) and judged on
monotonicity (SROCC, KROCC of the raw metric, raw sign, with permutation p-values over few
points), linearity (PLCC of the mapped metric, P.1401 §7.5.3), accuracy (rmse =
sqrt(sum(Perror^2) / (N - d)), Perror = MOS - mapped metric, §7.5.1; epsilon-insensitive rmse* =
sqrt(sum(max(0, |Perror| - ci95)^2) / (N - d)), §7.7) and consistency (outlier ratio: share of
points with |Perror| > ci95, §7.5.2.2). ci95 is the half-width of a point's 95% MOS interval,
t(0.975, M - 1) s / sqrt(M) over its M votes (§7.4, Appendix III); at the method level a point
is a condition (dataset x method) whose MOS, s and M pool the votes of its judged stimuli
(Appendix III.2) and whose metric value is the mean over those images.

A metric's "agreement" is its SROCC oriented by its direction (-SROCC when lower is better), so
one that correlates the wrong way ranks last, not first. Bootstrap intervals resample points
(percentile, seeded) with the mapping held at its fit on all points, so they omit the fit's own
uncertainty; KROCC's interval is Fisher's z with se sqrt(0.437 / (n - 4)), as objective.correlate.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .mapping import fit_logistic, logistic_d, vqeg_logistic
from .metric_comparison import _comparison_rows, _comparison_table
from .mos import ci_halfwidth
from .objective import _fisher_ci, excluded_counts, is_constant, is_reference, mark_excluded
from .panel_base import _STATS, D_LOGISTIC, LOWER_IS_BETTER, Fit, Scope
from .ranks import RankNull, rank_correlations
from .schema import STIMULUS, VotesError


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
        out[c] = num.astype(float)  # inf stays: PSNR's marks the reference (is_reference)
    if out.duplicated(list(STIMULUS)).any():
        raise VotesError("objective metrics repeat a stimulus")
    return out, list(metrics)


def _stimuli(stim: pd.DataFrame, objective: pd.DataFrame, metrics) -> tuple[pd.DataFrame, list]:
    """Rated stimuli with their metrics, marked by :func:`.objective.mark_excluded` on the
    metrics that have a value somewhere (returned; a metric without any is left out)."""
    need = [c for c in (*STIMULUS, "mos", "std", "n") if c not in stim.columns]
    if need:
        raise VotesError(f"MOS table lacks column(s) {', '.join(need)} (mos_per_stimulus output)")
    s = stim[[*STIMULUS, "mos", "std", "n"]].copy()
    s[list(STIMULUS)] = s[list(STIMULUS)].astype(str)
    m = s.merge(objective, on=list(STIMULUS), how="inner")
    others = m.loc[~is_reference(m), metrics].to_numpy(float)
    valued = [c for c, any_ in zip(metrics, np.isfinite(others).any(axis=0), strict=True) if any_]
    return mark_excluded(m, valued), valued


def _points(m: pd.DataFrame, metrics, level: str) -> pd.DataFrame:
    """dataset, [image,] method, mos, n, std, ci95 and the metric columns: a row per judged point
    of the :func:`_stimuli` table ``m``."""
    m = m[~m["_reference"] & ~m["_missing"]]
    if level == "method":
        # Appendix III.2: a condition's votes pooled; sums of squares rebuilt from n, mean, std.
        ss = (m["n"] - 1) * m["std"].fillna(0) ** 2 + m["n"] * m["mos"] ** 2
        g = m.assign(_sum=m["n"] * m["mos"], _ss=ss).groupby(["dataset", "method"], sort=True)
        m = g[metrics].mean()
        m["n"] = g["n"].sum()
        m["mos"] = g["_sum"].sum() / m["n"]
        m["std"] = np.sqrt(((g["_ss"].sum() - m["n"] * m["mos"] ** 2) / (m["n"] - 1)).clip(0))
        m = m.reset_index()
    m = m.assign(ci95=ci_halfwidth(m["std"].to_numpy(), m["n"].to_numpy(), "t"))
    return m


def _judge(x: np.ndarray, y: np.ndarray, ci95: np.ndarray, null: RankNull) -> Fit:
    """Point estimates for one metric, and its mapping onto MOS."""
    n = len(x)
    out = dict.fromkeys(
        ("d", "srocc_p", "krocc", "krocc_ci_low", "krocc_ci_high", "krocc_p", "plcc_raw", *_STATS),
        np.nan,
    ) | {"p_method": "", "note": ""}
    if n < 3 or is_constant(x) or is_constant(y):
        out["note"] = f"{'constant values' if n >= 3 else f'{n} point(s)'}: correlations undefined"
        return Fit(x, None, None, out)
    (out["srocc"], out["srocc_p"]), (out["krocc"], out["krocc_p"]) = rank_correlations(x, y, null)
    # Fieller, Hartley & Pearson's se sqrt(0.437 / (n - 4)), as objective.correlate.
    out["krocc_ci_low"], out["krocc_ci_high"] = _fisher_ci(out["krocc"], n - 1, 0.437)
    out["p_method"], out["plcc_raw"] = null.method, float(stats.pearsonr(x, y).statistic)
    p, note = fit_logistic(x, y)
    pred = None if p is None else vqeg_logistic(x, *p)
    if pred is not None and np.ptp(pred) > 0:
        out["d"], out["note"] = logistic_d(p), note
    elif n < 6:
        out["note"] = f"{note} (PLCC, rmse, rmse*, outlier ratio empty)"
        return Fit(x, None, None, out)
    else:
        # The optimiser's own words (in parentheses) stay out of a results table.
        why = note.split(" (")[0].split(", so ")[0] if note else "the fitted logistic is flat"
        p = np.array([0.0, 1.0, 0.0, *np.polyfit(x, y, 1)])  # b1 = 0: a straight line
        pred, out["d"] = vqeg_logistic(x, *p), 2
        out["note"] = f"{why}: mapped by a straight line instead (P.1401 Appendix II, d = 2)"
    out |= p1401_errors(y, pred, ci95, out["d"]) | {"plcc": stats.pearsonr(pred, y).statistic}
    return Fit(x, p, pred, out)


def _lacking(m: pd.DataFrame, metrics) -> dict[str, int]:
    """Per metric, the non-reference stimuli of ``m`` without its value."""
    others = m.loc[~m["_reference"], metrics].to_numpy(float)
    return dict(zip(metrics, (~np.isfinite(others)).sum(axis=0).tolist(), strict=True))


def _fits(stim, objective, metrics, levels, seed: int = 0, only=None):
    """The one judgement every output derives from: a :class:`Scope` per level and dataset
    (pooled "all" first when there are several), and the metrics left out for lack of values.

    ``only``: judge just this dataset's scope ("all": the pooled one), or with :data:`FIRST`
    just the first (what a figure of the pooled points draws), not every scope."""
    obj, metrics = _validate(objective, metrics)
    m, valued = _stimuli(stim, obj, metrics)
    scopes = []
    for level in levels:
        if level not in ("stimulus", "method"):
            raise ValueError(f"level must be 'stimulus' or 'method', got {level!r}")
        whole = [("all", m)] if m["dataset"].nunique() > 1 else []
        groups = whole + list(m.groupby("dataset", sort=True))
        if only is not None:
            groups = groups[:1] if only is FIRST else [(d, g) for d, g in groups if d == only]
        for ds, g in groups:
            points = _points(g, valued, level)
            y, ci = points["mos"].to_numpy(float), points["ci95"].to_numpy(float)
            counts = excluded_counts(g, None if level == "stimulus" else ["dataset", "method"])
            null = RankNull(y, seed)  # the same points for every metric: one null for all
            fits = {c: _judge(points[c].to_numpy(float), y, ci, null) for c in valued}
            for c, k in _lacking(g, valued).items():
                if k:  # say which metric shrank the common points
                    why = f"lacks {k} stimuli, so they are left out of every metric"
                    fits[c].judged["note"] = _join(fits[c].judged["note"], why)
            scopes.append(Scope(ds, level, y, ci, fits, counts))
    return scopes, [c for c in metrics if c not in valued]


# _fits(only=FIRST): the first scope alone (the pooled one where there are several datasets).
FIRST = object()


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


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


def _bootstrap(scope: Scope, n_boot: int, seed: int) -> dict[str, dict]:
    """Per metric, `_STATS` (raw SROCC sign) on ``n_boot`` resamples of the scope's points, the
    same resamples for every metric (so that their differences are paired); constant resamples
    give NaN (scipy's warning about them is silenced: the note says so in words)."""
    n = len(scope.y)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n), dtype=np.int32)
    y_ranks, y, ci = _boot_ranks(scope.y, idx), scope.y[idx], scope.ci[idx]
    out = {}
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for metric, fit in scope.fits.items():
            if not np.isfinite(fit.judged["srocc"]):
                continue
            boot = {"srocc": _row_pearson(_boot_ranks(fit.x, idx), y_ranks)}
            boot |= {k: np.full(n_boot, np.nan) for k in _STATS[1:]}
            if fit.pred is not None:
                boot |= p1401_errors(y, fit.pred[idx], ci, fit.judged["d"])
                boot["plcc"] = _row_pearson(fit.pred[idx], y)
            out[metric] = boot
    return out


def _ci(values) -> tuple[float, float]:
    ok = np.asarray(values)[np.isfinite(values)]
    return tuple(np.quantile(ok, [0.025, 0.975])) if len(ok) else (np.nan, np.nan)


_PERFORMANCE = [
    "dataset", "level", "metric", "direction", "n", "n_excluded", "n_reference", "n_missing",
    "agreement", "rank", "d", "srocc_p", "krocc", "krocc_ci_low", "krocc_ci_high", "krocc_p",
    "p_method", "plcc_raw", *(f"{k}{end}" for k in _STATS for end in ("", "_ci_low", "_ci_high")),
    "note",
]  # fmt: skip


def _performance_rows(scope: Scope, boot: dict, lower_better, dropped) -> list[dict]:
    """metric_panel.csv's rows of one scope (a metric left out for lack of values: n = 0)."""
    n_out = sum(scope.counts.values())
    rows = []
    for m, fit in scope.fits.items():
        sign = -1 if m in lower_better else 1
        row = {"dataset": scope.dataset, "level": scope.level, "metric": m, "n": len(fit.x)}
        row |= scope.counts | fit.judged | {"n_excluded": n_out}
        row |= {"direction": "lower" if sign < 0 else "higher", "agreement": sign * row["srocc"]}
        for k in _STATS:
            row[f"{k}_ci_low"], row[f"{k}_ci_high"] = _ci(boot.get(m, {}).get(k, np.nan))
        rows.append(row)
    for m in dropped:
        row = {"dataset": scope.dataset, "level": scope.level, "metric": m, "n": 0}
        row |= {"direction": "lower" if m in lower_better else "higher", "n_excluded": n_out}
        rows.append(row | {"note": "no value on any stimulus: left out of the panel"})
    return rows


def judge_panel(
    stim: pd.DataFrame,
    objective: pd.DataFrame,
    metrics=None,
    lower_better=LOWER_IS_BETTER,
    n_boot: int = 1000,
    seed: int = 0,
    levels=("stimulus", "method"),
    compare: bool = True,
    alpha: float = 0.05,
    scopes_out: list | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metric panel in one judgement: :func:`metric_performance`'s table and
    :func:`compare_metrics`' (empty unless ``compare``), from the same points, fits and
    resamples, so that a metric's values, rank and comparisons agree by construction.

    Parameters are those of :func:`metric_performance` and :func:`compare_metrics`; ``n_boot``
    resamples (0: none, and no paired bootstrap) are drawn once per scope for all metrics;
    ``scopes_out``, when given, receives the judged :class:`Scope` objects (a figure draws the
    first without fitting again).
    """
    scopes, dropped = _fits(stim, objective, metrics, levels, seed)
    if scopes_out is not None:
        scopes_out.extend(scopes)
    rows, pairs = [], []
    for i, scope in enumerate(scopes):
        boot = _bootstrap(scope, n_boot, seed) if n_boot else {}
        rows += [r | {"_scope": i} for r in _performance_rows(scope, boot, lower_better, dropped)]
        if compare:
            pairs += _comparison_rows(scope, boot, lower_better)
    perf = pd.DataFrame(rows, columns=[*_PERFORMANCE, "_scope"])
    perf["rank"] = perf.groupby("_scope")["agreement"].rank(ascending=False, method="min")
    # Best first within each dataset and level, as the page lists them.
    perf = perf.sort_values(["_scope", "rank"], na_position="last", kind="stable")
    return perf[_PERFORMANCE].reset_index(drop=True), _comparison_table(pairs, alpha)


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
        NaN or inf = missing. Every metric is judged on the same points: not the HR reference
        (:func:`.objective.is_reference`), and not a stimulus that lacks any metric's value.
    lower_better, n_boot, seed
        Metrics for which lower is better; bootstrap resamples (0: none) and their seed (also
        that of the random permutations of the p-values over 10 to 50 points).

    Returns
    -------
    pandas.DataFrame
        A row per ``dataset`` ("all" pooled when several), ``level`` ("stimulus", "method") and
        ``metric``, best first: ``direction`` ("higher"/"lower" is better), ``n`` (points
        judged, the same for every metric of a dataset and level; 0 for a metric without any
        value), ``n_excluded`` = ``n_reference`` (the HR reference's points) + ``n_missing``
        (points without a MOS or some metric's value), ``agreement`` (SROCC oriented by
        direction), ``rank`` (1 = best agreement in its dataset and level), ``d`` (mapping's
        parameters: 5, 4 or 2), ``srocc_p, krocc, krocc_ci_low, krocc_ci_high, krocc_p,
        p_method`` (how the p-values were found: exact or random permutations, or asymptotic),
        ``plcc_raw`` (raw sign), then ``srocc`` (raw sign), ``plcc`` (mapped), ``rmse,
        rmse_star, outlier_ratio``, each with ``_ci_low, _ci_high``; ``note`` says in words
        what is amiss.
    """
    return judge_panel(stim, objective, metrics, lower_better, n_boot, seed, levels, compare=False)[
        0
    ]


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

    Every pair is judged on the panel's common points (:func:`metric_performance`: the same
    ``n`` for all), each metric with its own mapping, so ``value_a`` and ``value_b`` are the
    metrics' values in ``metric_panel.csv`` (SROCC oriented: its ``agreement``). P.1401's
    tests: Fisher z of PLCC (§7.6.1), F of rmse and rmse* (§7.6.4, §7.7: p = P(F >= larger^2 /
    smaller^2) on N - d degrees of freedom each), z of outlier ratios (§7.6.2); they treat the two
    as independent samples though both score the same stimuli. The paired bootstrap does not:
    both metrics are recomputed on the same resampled stimuli, and p comes from the bootstrap
    standard error of the difference.

    Returns
    -------
    pandas.DataFrame
        ``dataset, level, metric_a, metric_b, n`` (the common points), ``criterion`` (srocc,
        plcc, rmse, rmse_star, outlier_ratio), ``value_a, value_b, difference`` (a - b),
        ``test``, ``p_value``, ``p_holm`` (Holm over the pairs of a dataset, level, criterion
        and test: P.1401 §7.6.5) and ``better`` (the better metric where ``p_holm < alpha``,
        else empty).
    """
    return judge_panel(
        stim, objective, metrics, lower_better, n_boot, seed, levels, compare=True, alpha=alpha
    )[1]
