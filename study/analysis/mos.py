"""Mean opinion scores with 95% confidence intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .crossed import METHOD, cells, crossed_mean, t_test
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


# What the ITU interval over votes assumes, said beside it (MOS_PRACTICE: "say that it takes
# raters and images as fixed when you show it").
FIXED = "over votes, raters and images fixed"
GENERAL_COLUMNS = [
    "se_general",
    "df_general",
    "ci95_low_general",
    "ci95_high_general",
    "ci_method_general",
]


def general_interval(r: pd.DataFrame) -> pd.DataFrame:
    """95% CI of each method's MOS that generalises over raters and images.

    Per dataset and method the rater x image cells (a rater's repeats averaged) follow
    :math:`s_{ri} = \\mu + a_r + b_i + e_{ri}` with rater and image effects random; the MOS is
    the cells' mean weighted by their votes (the same number as the mean over votes), its
    variance comes from the moment estimates of the components
    (:func:`study.analysis.crossed.crossed_mean`), and the interval is
    :math:`MOS \\pm t_{0.975, df}\\, se` with Satterthwaite df.

    Returns
    -------
    pandas.DataFrame
        ``dataset, method, se_general, df_general, ci95_low_general, ci95_high_general,
        ci_method_general, note_general`` (why the interval is NaN: fewer than 2 raters or 2
        images, or no variation).
    """
    frames = []
    for ds, g in r.groupby("dataset", sort=True, observed=True):
        methods = sorted(str(m) for m in g["method"].unique())
        x, w = cells(g, methods)
        est = crossed_mean(np.moveaxis(x, -1, 0), np.moveaxis(w, -1, 0))
        t = t_test(est)
        note = np.where(
            est.defined,
            "",
            np.where(
                (est.n_raters < 2) | (est.n_images < 2),
                "fewer than 2 raters or 2 images: no interval over raters and images",
                "no variation between raters' or images' votes: no interval over them",
            ),
        )
        frames.append(
            pd.DataFrame(
                {
                    "dataset": str(ds),
                    "method": methods,
                    "se_general": est.se,
                    "df_general": est.df,
                    "ci95_low_general": t["ci_low"],
                    "ci95_high_general": t["ci_high"],
                    "ci_method_general": METHOD,
                    "note_general": note,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def with_general_interval(mos: pd.DataFrame, r: pd.DataFrame) -> pd.DataFrame:
    """``mos`` (a :func:`summarize` by dataset and method) with :func:`general_interval`'s
    columns after ``ci_method``, ``ci_method`` saying the ITU interval takes raters and images
    as fixed, and the general interval's reason in ``note`` where it is undefined."""
    gen = general_interval(r)
    out = mos.merge(gen, on=["dataset", "method"], how="left", validate="one_to_one")
    out["ci_method"] = out["ci_method"] + f" ({FIXED})"
    extra = out.pop("note_general").fillna("")
    out["note"] = [
        "; ".join(x for x in (a, b) if x) for a, b in zip(out["note"], extra, strict=True)
    ]
    cols = list(mos.columns)
    at = cols.index("ci_method") + 1
    return out[cols[:at] + GENERAL_COLUMNS + cols[at:]]


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
        ``ci95_low``, ``ci95_high`` (the ITU interval over votes, which takes raters and images
        as fixed), ``ci_method`` ("t" or "normal"; for the default grouping followed by
        "(over votes, raters and images fixed)"), ``defined`` (False when n = 1) and ``note``
        (why a value is NaN). With n = 1, ``std`` and the CI are NaN and ``defined`` is False.
        With the default ``by`` also ``se_general, df_general, ci95_low_general,
        ci95_high_general, ci_method_general`` after ``ci_method``: the interval that
        generalises over raters and images (:func:`general_interval`).

    References
    ----------
    ITU-T P.800.2 (2016), Mean opinion score interpretation and reporting.
    ITU-T P.808 (2021), section 10 (MOS and 95% CI).
    """
    r = ratings(votes)
    out = summarize(r, by, ci, method_order)
    if tuple(by) == ("dataset", "method"):
        out = with_general_interval(out, r)
    return out


def mos_per_stimulus(
    votes: pd.DataFrame, ci: str = "t", method_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean opinion score per stimulus (dataset x image x method) with a 95% CI.

    Same estimator and columns as :func:`mos_table` with ``by=("dataset", "image", "method")``:
    ``dataset, image, method, n, n_raters, mos, std, median, ci95_low, ci95_high, ci_method,
    defined, note``.
    """
    return summarize(ratings(votes), ("dataset", "image", "method"), ci, method_order)
