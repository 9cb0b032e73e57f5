"""Mean opinion scores with 95% confidence intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .order import sort_rows
from .schema import VotesError, ratings

# The normal quantile P.808 rounds to 1.96 (sureal uses 1.95996).
_Z975 = float(stats.norm.ppf(0.975))
CI_METHODS = {
    "t": "t(0.975, n-1) * s / sqrt(n)",
    "normal": "z(0.975) * s / sqrt(n), z = 1.959964 (ITU-T P.808's 1.96, sureal)",
}


def ci_halfwidth(std: np.ndarray, n: np.ndarray, ci: str = "t") -> np.ndarray:
    """Half-width of the 95% confidence interval of a mean.

    ``ci="t"``: :math:`t_{0.975,\\,n-1}\\, s/\\sqrt{n}`; ``ci="normal"``: :math:`1.96\\, s/\\sqrt{n}`
    as ITU-T P.808 and sureal report it. NaN where ``n < 2`` (s undefined).
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {', '.join(CI_METHODS)}, got {ci!r}")
    n = np.asarray(n, dtype="float64")
    std = np.asarray(std, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        if ci == "t":
            q = stats.t.ppf(0.975, np.where(n >= 2, n - 1, np.nan))
        else:
            q = np.full_like(n, _Z975)
        half = q * std / np.sqrt(n)
    return np.where(n >= 2, half, np.nan)


def summarize(
    scores: pd.DataFrame,
    by: Sequence[str],
    ci: str = "t",
    method_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """n, mean, std, median and CI of ``score`` per group of ``by`` (no kind filtering).

    Rows sorted by ``by``, methods in ``method_order`` when given (alphabetical otherwise).
    """
    by = list(by)
    missing = [c for c in by if c not in scores.columns]
    if missing:
        raise VotesError(f"cannot group by missing column(s) {', '.join(missing)}")
    g = scores.groupby(by, sort=True, observed=True)
    out = g["score"].agg(n="size", mos="mean", std="std", median="median").reset_index()
    out["n_raters"] = g["rater"].nunique().to_numpy()
    # Plain strings out, whatever the input's identifier dtype (validated votes use categoricals).
    out[by] = out[by].astype(str)
    half = ci_halfwidth(out["std"].to_numpy(), out["n"].to_numpy(), ci)
    out["ci95_low"] = out["mos"] - half
    out["ci95_high"] = out["mos"] + half
    out["ci_method"] = ci
    out["defined"] = out["n"] >= 2
    out["note"] = np.where(out["defined"], "", "n=1: std and CI undefined")
    cols = [
        *by,
        "n",
        "n_raters",
        "mos",
        "std",
        "median",
        "ci95_low",
        "ci95_high",
        "ci_method",
        "defined",
        "note",
    ]
    return sort_rows(out[cols], by, method_order)


def mos_table(
    votes: pd.DataFrame,
    by: Sequence[str] = ("dataset", "method"),
    ci: str = "t",
    method_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean opinion score per method and dataset (or any grouping) with a 95% CI.

    Parameters
    ----------
    votes : pandas.DataFrame
        Long vote table (see :func:`study.analysis.validate_votes`). Only ``kind == "rating"``
        votes are used; repeated votes of a rater on a stimulus each count as one vote.
    by : sequence of str
        Grouping columns, default ``("dataset", "method")``.
    ci : {"t", "normal"}
        ``"t"`` (default, conservative): :math:`\\bar x \\pm t_{0.975,n-1}\\, s/\\sqrt n`;
        ``"normal"``: :math:`\\bar x \\pm 1.96\\, s/\\sqrt n` as ITU-T P.808 and sureal.
    method_order : sequence of str, optional
        Method names in the order the rows should follow (e.g. the paper's: interpolation,
        networks, HR); unlisted methods come after, alphabetically. Default: alphabetical.

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by ``by`` (methods in ``method_order``): the ``by`` columns,
        ``n`` (votes), ``n_raters``, ``mos`` (mean), ``std`` (sample std, ddof 1), ``median``,
        ``ci95_low``, ``ci95_high``, ``ci_method`` ("t" or "normal"), ``defined`` (False when
        n = 1) and ``note`` (why a value is NaN). With n = 1, ``std`` and the CI are NaN and ``defined`` is False.

    References
    ----------
    ITU-T P.800.2 (2016), Mean opinion score interpretation and reporting.
    ITU-T P.808 (2021), section 10 (MOS and 95% CI).
    """
    return summarize(ratings(votes), by, ci, method_order)


def mos_per_stimulus(
    votes: pd.DataFrame, ci: str = "t", method_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean opinion score per stimulus (dataset x image x method) with a 95% CI.

    Same estimator and columns as :func:`mos_table` with ``by=("dataset", "image", "method")``:
    ``dataset, image, method, n, n_raters, mos, std, median, ci95_low, ci95_high, ci_method,
    defined, note``.
    """
    return summarize(ratings(votes), ("dataset", "image", "method"), ci, method_order)
