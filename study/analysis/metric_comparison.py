"""Is metric A better than metric B on the same stimuli? ITU-T P.1401's tests (Fisher z on PLCC,
F on RMSE, two proportions on the outlier ratio) and a paired bootstrap, on the panel's common
points, fits and resamples (metric_comparison.csv)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .panel_base import _CRITERIA, _STATS, D_LOGISTIC, Fit, Scope, label
from .significance import holm


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


def _oriented(fit: Fit, boot: dict | None, sign: int, n_boot: int) -> tuple[dict, dict]:
    """A metric's point estimates and resampled `_STATS` with SROCC oriented (higher agrees)."""
    point = {k: fit.judged[k] for k in (*_STATS, "d")} | {"srocc": sign * fit.judged["srocc"]}
    boot = boot or {k: np.full(n_boot, np.nan) for k in _STATS}
    return point, boot | {"srocc": sign * boot["srocc"]}


def _comparison_rows(scope: Scope, boot: dict, lower_better) -> list[dict]:
    """metric_comparison.csv's rows of one scope: every pair of metrics, on its points."""
    n = len(scope.y)
    if n <= D_LOGISTIC:
        return []
    n_boot = len(next(iter(boot.values()))["srocc"]) if boot else 1
    oriented = {
        m: _oriented(fit, boot.get(m), -1 if m in lower_better else 1, n_boot)
        for m, fit in scope.fits.items()
    }
    rows = []
    for a, b in combinations(scope.fits, 2):
        (va, ba), (vb, bb) = oriented[a], oriented[b]
        pair = _pair_rows(a, b, va, vb, ba, bb, n)
        rows += [{"dataset": scope.dataset, "level": scope.level} | r for r in pair]
    return rows


def _comparison_table(rows: list[dict], alpha: float) -> pd.DataFrame:
    """The comparisons with Holm's adjustment per family and the better metric where p_holm <
    alpha."""
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

    E.g. "On this study, LPIPS predicts MOS better than PSNR (SROCC 0.81 vs 0.52 on 1,008
    stimuli, paired bootstrap p = 0.003)." ``dataset`` defaults to the pooled "all" (or the only
    dataset). Its numbers are ``metric_comparison.csv``'s, so those of ``metric_panel.csv``
    (SROCC oriented so that higher agrees better: the panel's ``agreement``).
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
    points = f"{int(r['n']):,} {'stimuli' if level == 'stimulus' else 'conditions'}"
    evidence = f"{_CRITERIA[criterion][0]} {values[first]:.2f} vs {values[second]:.2f} on {points}"
    evidence += f", {test} "
    evidence += "p < 0.001" if r["p_holm"] < 0.001 else f"p = {r['p_holm']:.3f}"
    evidence += " after Holm's adjustment" if r["p_holm"] != r["p_value"] else ""
    if r["better"]:
        return f"{where}, {label(first)} predicts MOS better than {label(second)} ({evidence})."
    return (
        f"{where}, {label(first)} and {label(second)} predict MOS about equally well "
        f"({evidence}: not significant)."
    )
