"""Means that generalise over raters *and* images: crossed random effects by moments.

A score (or a paired difference between two methods) of rater r on image i is modelled as

    y_ri = mu + a_r + b_i + e_ri,   a ~ (0, s_a^2), b ~ (0, s_b^2), e ~ (0, s_e^2),

raters and images both random samples (Judd, Westfall & Kenny 2012; Baayen, Davidson & Bates
2008). For one method's scores, a and b are the rater and image effects; for the difference
between two methods they are the rater x method and image x method interactions, the terms that
make votes sharing a rater or an image dependent and that a test over all rater x image pairs
ignores.

The variance components are estimated by the method of moments with the U-statistics of Gao &
Owen (2017), which handle any pattern of missing cells in O(cells) and equal the classical
two-way ANOVA (expected mean squares) estimators on a complete design. The variance of a
weighted mean of the cells follows from them, and a t reference distribution with
Satterthwaite (1946) degrees of freedom carries the uncertainty of the estimated components
(the quasi-F logic of Clark 1973, Judd et al. 2012). Everything is vectorised over a leading
batch axis, so all method pairs of a dataset (or all simulated replicates) are one call.

References
----------
Gao, K. & Owen, A. B. (2017), "Efficient moment calculations for variance components in large
unbalanced crossed random effects models", Electronic Journal of Statistics 11.
Owen, A. B. (2007), "The pigeonhole bootstrap", Annals of Applied Statistics 1.
Judd, C. M., Westfall, J. & Kenny, D. A. (2012), "Treating stimuli as a random factor in social
psychology", Journal of Personality and Social Psychology 103.
Baayen, R. H., Davidson, D. J. & Bates, D. M. (2008), "Mixed-effects modeling with crossed random
effects for subjects and items", Journal of Memory and Language 59.
Satterthwaite, F. E. (1946), Biometrics Bulletin 2.
Bozivich, H., Bancroft, T. A. & Hartley, H. O. (1956), "Power of analysis of variance test
procedures for certain incompletely specified models", Annals of Mathematical Statistics 27.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

GENERALISES = "raters and images"
# A variance component whose F ratio is not significant at this level is pooled into the
# residual (Bozivich, Bancroft & Hartley 1956 recommend 0.25 for "sometimes pool" designs).
POOL_ALPHA = 0.25
METHOD = "crossed random raters and images (moments), t with Satterthwaite df"


@dataclass(frozen=True)
class CrossedEstimate:
    """Arrays over the batch axis (shape ``y.shape[:-2]``) from :func:`crossed_mean`.

    ``mean`` (weighted mean of the cells), ``se``, ``df`` (Satterthwaite), ``var_rater``,
    ``var_image``, ``var_resid`` (moment estimates after pooling, 0 for a pooled term),
    ``n_raters``, ``n_images``, ``n_cells`` (observed), ``defined`` (False with fewer than 2
    raters or 2 images, or no variation at all; se, df and the components are NaN there).
    """

    mean: np.ndarray
    se: np.ndarray
    df: np.ndarray
    var_rater: np.ndarray
    var_image: np.ndarray
    var_resid: np.ndarray
    n_raters: np.ndarray
    n_images: np.ndarray
    n_cells: np.ndarray
    defined: np.ndarray


def _moments(y: np.ndarray) -> dict[str, np.ndarray]:
    """The U-statistics of :func:`variance_components`, each divided by its count."""
    obs = ~np.isnan(y)
    z = obs.astype(float)
    y0 = np.where(obs, y, 0.0)
    y2 = y0 * y0
    n = z.sum(axis=(-2, -1))
    n_r, n_i = z.sum(axis=-1), z.sum(axis=-2)
    sr2, si2 = (n_r**2).sum(axis=-1), (n_i**2).sum(axis=-1)
    u_a = (n_r * y2.sum(axis=-1) - y0.sum(axis=-1) ** 2).sum(axis=-1)
    u_b = (n_i * y2.sum(axis=-2) - y0.sum(axis=-2) ** 2).sum(axis=-1)
    u_e = n * y2.sum(axis=(-2, -1)) - y0.sum(axis=(-2, -1)) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "within_rater": np.where(sr2 > n, u_a / (sr2 - n), np.nan),  # s_b^2 + s_e^2
            "within_image": np.where(si2 > n, u_b / (si2 - n), np.nan),  # s_a^2 + s_e^2
            "total": np.where(n > 1, u_e / (n * n - n), np.nan),  # s_a^2 + s_b^2 + s_e^2
            "n": n,
            "sr2": sr2,
            "si2": si2,
        }


def variance_components(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment estimates (s_a^2, s_b^2, s_e^2) of the crossed model from cells ``y`` (..., R, I).

    NaN marks a missing cell. With :math:`N_{r\\cdot}`, :math:`N_{\\cdot i}` the observed cells
    per rater and image, the U-statistics (half the sums of squared differences of cells sharing
    a rater, sharing an image, and of all pairs of cells) have expectations

    :math:`E U_a = (s_b^2 + s_e^2)(\\sum_r N_{r\\cdot}^2 - N)`,
    :math:`E U_b = (s_a^2 + s_e^2)(\\sum_i N_{\\cdot i}^2 - N)`,
    :math:`E U_e = s_a^2 (N^2 - \\sum_r N_{r\\cdot}^2) + s_b^2 (N^2 - \\sum_i N_{\\cdot i}^2)
    + s_e^2 (N^2 - N)`,

    solved here (Gao & Owen 2017). Untruncated (an estimate can be negative); NaN where the
    design cannot separate them (no rater with 2 images, no image with 2 raters).
    """
    m = _moments(y)
    n, sr2, si2 = m["n"], m["sr2"], m["si2"]
    with np.errstate(invalid="ignore", divide="ignore"):
        # Substitute s_a^2 = within_image - s_e^2 and s_b^2 = within_rater - s_e^2 into E U_e;
        # the coefficient of s_e^2 is negative on every design with 2 raters and 2 images.
        denom = sr2 + si2 - n * n - n
        s_e = (
            m["total"] * (n * n - n)
            - m["within_image"] * (n * n - sr2)
            - m["within_rater"] * (n * n - si2)
        ) / denom
        s_e = np.where(denom < 0, s_e, np.nan)
    return m["within_image"] - s_e, m["within_rater"] - s_e, s_e


def _kept(s: np.ndarray, s_e: np.ndarray, k: np.ndarray, df1: np.ndarray, df2: np.ndarray):
    """Whether a component ``s`` is kept: positive and its F ratio :math:`1 + k s / s_e`
    (the complete design's MS of that factor over MS error, k cells per level) beyond the
    75th percentile of F(df1, df2), Bozivich, Bancroft & Hartley's (1956) "sometimes pool"
    rule at 0.25."""
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(s_e > 0, 1 + k * s / s_e, np.inf)
        return (s > 0) & (f >= stats.f.ppf(1 - POOL_ALPHA, df1, df2))


def _reduced(y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Components after pooling those the data do not support, refitted without them.

    A term whose F ratio is small (:func:`_kept`) is dropped and the smaller model refitted,
    which keeps the variance and its degrees of freedom consistent: without the rater term the
    mean is in effect a mean over images (df I - 1), without the image term one over raters
    (df R - 1), without both one over cells (df N - 1). Pooling at 0.25 rather than at
    "estimate <= 0" keeps the test from being conservative when there is no interaction
    (calibration in docs/analysis.md). Where no rater rated two images, the rater term cannot
    be told from the residual and is merged into it (likewise for images). Returns (s_a, s_b,
    s_e, model) with model 0 full, 1 no rater term, 2 no image term, 3 neither.
    """
    m = _moments(y)
    s_a, s_b, s_e = variance_components(y)
    wr, wi, tot, n = m["within_rater"], m["within_image"], m["total"], m["n"]
    obs = ~np.isnan(y)
    n_r, n_i = obs.any(axis=-1).sum(axis=-1), obs.any(axis=-2).sum(axis=-1)
    df_e = np.maximum(n - n_r - n_i + 1, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep_a = _kept(s_a, s_e, m["sr2"] / n, n_r - 1, df_e)
        keep_b = _kept(s_b, s_e, m["si2"] / n, n_i - 1, df_e)
        # Weights of s_a^2 and s_b^2 in E(total) = k_a s_a^2 + k_b s_b^2 + s_e^2.
        k_a = (n * n - m["sr2"]) / (n * n - n)
        k_b = (n * n - m["si2"]) / (n * n - n)
        # The image (rater) term of the model without the rater (image) term.
        b_alone = np.where(np.isnan(wr), (tot - wi) / k_b, wr - wi)
        a_alone = np.where(np.isnan(wi), (tot - wr) / k_a, wi - wr)
    full = keep_a & keep_b
    # Keep one term only where the full fit kept it, or where the other cannot be estimated.
    b_only = ((keep_b & ~full) | (np.isnan(wr) & ~np.isnan(wi))) & (b_alone > 0)
    a_only = ((keep_a & ~full) | (np.isnan(wi) & ~np.isnan(wr))) & (a_alone > 0) & ~b_only
    model = np.select([full, b_only, a_only], [0, 1, 2], 3)
    sa = np.select([full, a_only], [s_a, a_alone], 0.0)
    sb = np.select([full, b_only], [s_b, b_alone], 0.0)
    se = np.select([full, b_only, a_only], [np.maximum(s_e, 0.0), wi, wr], tot)
    return sa, sb, se, model


def crossed_mean(y: np.ndarray, weights: np.ndarray | None = None) -> CrossedEstimate:
    """Weighted mean of the cells of ``y`` (..., R, I) with its standard error and df.

    Parameters
    ----------
    y : numpy.ndarray
        Cell values, NaN where a rater did not rate an image; any leading batch axes.
    weights : numpy.ndarray, optional
        Weight of each cell (e.g. its number of votes, so the mean is the MOS over votes);
        default 1 per observed cell.

    Returns
    -------
    CrossedEstimate
        With :math:`W_{r\\cdot}`, :math:`W_{\\cdot i}` the weight per rater and image and W the
        total, :math:`Var(\\bar y) = c_a s_a^2 + c_b s_b^2 + c_e s_e^2`,
        :math:`c_a = \\sum_r W_{r\\cdot}^2/W^2`, :math:`c_b = \\sum_i W_{\\cdot i}^2/W^2`,
        :math:`c_e = \\sum w^2/W^2` (on a complete unweighted design 1/R, 1/I, 1/(RI)), with the
        components of :func:`_reduced`. df: Satterthwaite on :math:`T_r + T_i - T_e`,
        :math:`T_r = c_a s_a^2 + c_e s_e^2` (R - 1 df), :math:`T_i = c_b s_b^2 + c_e s_e^2`
        (I - 1 df), :math:`T_e = c_e s_e^2` (N - R - I + 1 df), the complete design's mean
        squares over RI; for a reduced model I - 1, R - 1 or N - 1.
    """
    y = np.asarray(y, dtype=float)
    obs = ~np.isnan(y)
    w = obs.astype(float) if weights is None else np.where(obs, weights, 0.0)
    s_a, s_b, s_e, model = _reduced(y)
    tot = w.sum(axis=(-2, -1))
    n_r = obs.any(axis=-1).sum(axis=-1)
    n_i = obs.any(axis=-2).sum(axis=-1)
    n = obs.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (np.where(obs, y, 0.0) * w).sum(axis=(-2, -1)) / tot
        c_a = (w.sum(axis=-1) ** 2).sum(axis=-1) / tot**2
        c_b = (w.sum(axis=-2) ** 2).sum(axis=-1) / tot**2
        c_e = (w * w).sum(axis=(-2, -1)) / tot**2
        t_r, t_i, t_e = c_a * s_a + c_e * s_e, c_b * s_b + c_e * s_e, c_e * s_e
        var = t_r + t_i - t_e
        df_e = np.maximum(n - n_r - n_i + 1, 1)
        df_full = var**2 / (t_r**2 / (n_r - 1) + t_i**2 / (n_i - 1) + t_e**2 / df_e)
    df = np.choose(model, [df_full, n_i - 1.0, n_r - 1.0, n - 1.0])
    defined = np.isfinite(var) & (var > 0) & (n_r >= 2) & (n_i >= 2)
    nan = lambda x: np.where(defined, x, np.nan)  # noqa: E731
    return CrossedEstimate(
        mean=mean,
        se=nan(np.sqrt(np.maximum(var, 0.0))),
        df=nan(df),
        var_rater=nan(s_a),
        var_image=nan(s_b),
        var_resid=nan(s_e),
        n_raters=n_r,
        n_images=n_i,
        n_cells=n,
        defined=defined,
    )


def cells(g: pd.DataFrame, methods: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """One dataset's rating votes as (raters, images, methods) arrays: cell means and counts.

    ``g`` holds validated votes (categorical identifiers, see :func:`.schema.ratings`) of one
    dataset; a rater's repeated votes on a stimulus are averaged into the cell, and ``counts``
    says how many there were. Cells nobody voted are NaN (count 0); raters and images come in
    the order of their categories, methods in ``methods``' order (others are left out).
    """
    _, r = np.unique(g["rater"].cat.codes.to_numpy(), return_inverse=True)
    _, i = np.unique(g["image"].cat.codes.to_numpy(), return_inverse=True)
    position = {name: k for k, name in enumerate(methods)}
    lookup = np.array([position.get(c, -1) for c in g["method"].cat.categories] + [-1])
    m = lookup[g["method"].cat.codes.to_numpy()]
    keep = m >= 0
    shape = (r.max() + 1 if len(r) else 0, i.max() + 1 if len(i) else 0, len(methods))
    flat = np.ravel_multi_index((r[keep], i[keep], m[keep]), shape)
    size = int(np.prod(shape))
    counts = np.bincount(flat, minlength=size).reshape(shape).astype(float)
    sums = np.bincount(flat, weights=g["score"].to_numpy()[keep], minlength=size).reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan), counts


def t_test(est: CrossedEstimate, null: float = 0.0, level: float = 0.95) -> dict[str, np.ndarray]:
    """Two-sided t test of ``mean == null`` and the ``level`` interval, from :func:`crossed_mean`.

    Returns ``statistic`` (t), ``p``, ``ci_low``, ``ci_high`` (NaN where not ``defined``).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (est.mean - null) / est.se
        p = 2 * stats.t.sf(np.abs(t), est.df)
        half = stats.t.ppf(0.5 + level / 2, est.df) * est.se
    return {"statistic": t, "p": p, "ci_low": est.mean - half, "ci_high": est.mean + half}
