"""Uncertainty of a JOD scale over raters and images: resamples of raters, of images and of single
comparisons, fitted in batches by a warm-started Newton step, combined so that each source of
variance counts once (Satterthwaite df)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.sparse.csgraph import connected_components
from scipy.special import log_ndtr

from .scaling import _LOG_PHI0, BOUND, NORMAL_SD, SIGMA, scale
from .significance import holm


def _newton_batch(c: np.ndarray, ref: int, x0: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """:func:`thurstone_scale` with the normal prior for a batch of connected count matrices.

    The objective is convex (log Phi is concave, the prior quadratic), so damped Newton from the
    full data's scores reaches the optimum L-BFGS finds in a handful of steps, all resamples at
    once: that is what makes thousands of resamples per block cheap.
    """
    n_b, m, _ = c.shape
    i, j = np.nonzero(~np.eye(m, dtype=bool))  # every ordered pair, as thurstone_scale counts
    win, lose = c[:, i, j], c[:, j, i]
    prior = ((win + lose) > 0) / NORMAL_SD**2  # on the pairs compared in that resample
    free = np.arange(m) != ref
    u = np.zeros((len(i), m))
    u[np.arange(len(i)), i], u[np.arange(len(i)), j] = 1.0, -1.0
    uf = u[:, free]
    q = np.tile(np.asarray(x0, dtype=float), (n_b, 1))

    def objective(q):
        d = q @ u.T
        z = d / SIGMA
        return -(win * log_ndtr(z) + lose * log_ndtr(-z)).sum(1) + 0.5 * (prior * d * d).sum(1)

    f = objective(q)
    for _ in range(100):
        d = q @ u.T
        z = d / SIGMA
        rp = np.exp(_LOG_PHI0 - 0.5 * z * z - log_ndtr(z))  # phi / Phi: inverse Mills ratios
        rq = np.exp(_LOG_PHI0 - 0.5 * z * z - log_ndtr(-z))
        g = -(win * rp - lose * rq) / SIGMA + prior * d
        h = (win * rp * (z + rp) + lose * rq * (rq - z)) / SIGMA**2 + prior
        hess = np.einsum("bp,pf,pg->bfg", h, uf, uf)
        step = -np.linalg.solve(hess, (g @ uf)[..., None])[..., 0]
        t = np.ones(n_b)
        for _ in range(40):  # halve the step where it does not descend
            trial = q.copy()
            trial[:, free] += t[:, None] * step
            f_new = objective(trial)
            worse = f_new > f + 1e-12 * np.abs(f)
            if not worse.any():
                break
            t[worse] /= 2
        q, f = trial, f_new
        if np.abs(t[:, None] * step).max() < tol:
            break
    return np.clip(q, -BOUND, BOUND)


def _fit_batch(c: np.ndarray, how: tuple, x0: np.ndarray, connected: bool) -> np.ndarray:
    """Scores (:func:`scale` with ``how``) of every count matrix in ``c`` (resamples x M x M)."""
    model, prior, ref = how
    out = np.full(c.shape[:2], np.nan)
    loop = np.ones(len(c), dtype=bool)
    if model == "thurstone" and prior == "normal" and connected:
        # A resample that lost a pair may have split the graph: those go through the loop,
        # which links components as pwcmp does.
        full = (c.sum(axis=0) + c.sum(axis=0).T) > 0
        lost = (((c + c.swapaxes(1, 2)) > 0) != full).any(axis=(1, 2))
        for b in np.flatnonzero(lost):
            lost[b] = connected_components(c[b] + c[b].T > 0, directed=False)[0] > 1
        loop = lost
        if (~loop).any():
            out[~loop] = _newton_batch(c[~loop], ref, x0)
    for b in np.flatnonzero(loop):
        out[b] = scale(c[b], model, prior, ref)
    return out


def _resamples(per_rater, per_image, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Count matrices of ``n_boot`` resamples of raters, of images and of comparisons, seeded.

    A resample of raters weights each rater's matrix by how often the rater was drawn (pwcmp's
    ``pw_scale_bootstrp``), one of images each image's; resampling comparisons independently
    is a multinomial draw over the cells of the pooled matrix.
    """
    rng = np.random.default_rng(seed)
    m = per_rater.shape[1]
    out = {}
    for name, units in (("raters", per_rater), ("images", per_image)):
        w = rng.multinomial(len(units), np.full(len(units), 1 / len(units)), size=n_boot)
        out[name] = (w @ units.reshape(len(units), -1)).reshape(n_boot, m, m)
    total = per_rater.sum(axis=0).ravel()
    out["comparisons"] = rng.multinomial(total.sum(), total / total.sum(), size=n_boot)
    out["comparisons"] = out["comparisons"].reshape(n_boot, m, m)
    return out


def _over(n_raters: int, n_images: int) -> str:
    """What an interval generalises over, given how many raters and images a block has."""
    if n_raters > 1 and n_images > 1:
        return "raters and images"
    if n_raters > 1:
        return "raters (one image)"
    return "images (one rater)" if n_images > 1 else "comparisons (one rater, one image)"


def _spread(scores: dict, contrast: np.ndarray, sizes: dict, n_boot: int) -> dict:
    r"""Standard errors of ``contrast @ q`` generalising over raters and images, and their df.

    Each resampling's variance (times n/(n - 1), the bootstrap's small-sample shrinkage) counts
    the comparisons' own binomial noise once: resampling comparisons, :math:`v_c`, only that;
    resampling raters, :math:`v_r`, adds the method x rater component; images, :math:`v_i`, the
    method x image one. So :math:`v = v_c + (v_r - v_c)_+ + (v_i - v_c)_+` counts every source
    once, each component kept non-negative: the moment combination of one-way bootstraps for
    crossed designs (McCullagh 2000). Owen's (2007) pigeonhole bootstrap, resampling both at once,
    counts the noise about three times (a comparison's weight has variance
    (2 - 1/R)(2 - 1/K) - 1): valid but conservative (0.3% false positives at the 5% level on
    a null without interactions, bench/bench_pc_calibration.py). Welch-Satterthwaite degrees of
    freedom (each kept component with R - 1, K - 1 or N - 1), so few raters or images widen the
    t interval. A block with one image (one rater) cannot generalise over images (raters): the
    other variance alone, as ``over`` says.

    Returns
    -------
    dict
        ``se, se_raters, se_images`` (the combined and the one-way standard errors) and ``df``,
        one per contrast.
    """
    nan = np.full(len(contrast), np.nan)
    if n_boot < 2:
        return {"se": nan, "se_raters": nan, "se_images": nan, "df": nan}
    v, dof = {}, {}
    for name, s in scores.items():
        n = sizes[name]
        v[name] = (s @ contrast.T).var(axis=0, ddof=1) * (n / (n - 1) if n > 1 else 0.0)
        dof[name] = max(n - 1, 1)
    if sizes["raters"] > 1 and sizes["images"] > 1:
        kept = {k: v[k] > v["comparisons"] for k in ("raters", "images")}
        total = v["comparisons"] + sum(np.where(kept[k], v[k] - v["comparisons"], 0) for k in kept)
        # Var(v) / 2 term by term: a kept component brings its variance in and cancels one v_c.
        coef_c = 1 - kept["raters"].astype(int) - kept["images"].astype(int)
        noise = coef_c**2 * v["comparisons"] ** 2 / dof["comparisons"]
        noise = noise + sum(np.where(kept[k], v[k] ** 2 / dof[k], 0) for k in kept)
    else:
        one = "raters" if sizes["raters"] > 1 else "images" if sizes["images"] > 1 else None
        total = v[one or "comparisons"]
        noise = total**2 / dof[one or "comparisons"]
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(noise > 0, total**2 / noise, np.nan)
    return {
        "se": np.sqrt(total),
        "se_raters": np.sqrt(v["raters"]),
        "se_images": np.sqrt(v["images"]),
        "df": df,
    }


def _interval(est, se, df) -> dict:
    """95% t interval ``est +- t(0.975, df) se`` (a point where se is 0: the reference)."""
    with np.errstate(invalid="ignore"):
        half = np.where(se > 0, stats.t.ppf(0.975, df) * se, 0.0)
    return {"ci95_low": est - half, "ci95_high": est + half}


def _fit_block(per_rater, per_image, ref: int, how: tuple) -> tuple:
    """Scores of a block's pooled counts and of its resamples (warm-started from them).

    ``how`` is ``(model, prior, n_boot, seed)``. Returns the scores, a dict of resampled scores
    per kind (empty without resamples) and the sizes (raters, images, comparisons).
    """
    model, prior, n_boot, seed = how
    total = per_rater.sum(axis=0)
    q = scale(total, model, prior, ref)
    connected = connected_components((total + total.T) > 0, directed=False)[0] == 1
    scores = {}
    for name, c in (_resamples(per_rater, per_image, n_boot, seed) if n_boot else {}).items():
        scores[name] = _fit_batch(c, (model, prior, ref), q, connected)
    sizes = {"raters": len(per_rater), "images": len(per_image), "comparisons": int(total.sum())}
    return q, scores, sizes


def _tests(q, ia, ib, scores, sizes, n_boot) -> dict:
    """Differences q_a - q_b, their spread and t interval, and two-sided p (Holm over pairs)."""
    m = len(q)
    contrast = np.zeros((len(ia), m))
    contrast[np.arange(len(ia)), ia], contrast[np.arange(len(ia)), ib] = 1.0, -1.0
    d = q[ia] - q[ib]
    spread = _spread(scores, contrast, sizes, n_boot)
    se, df = spread.pop("se"), spread["df"]
    # From the standard error (t with Satterthwaite's df), as the metric panel's tests: a count
    # of resamples past zero bottoms out at 2 / (B + 1), which Holm over the 66 pairs of 12
    # methods never brings under 0.05 with 1,000 resamples.
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(se > 0, 2 * stats.t.sf(np.abs(d) / se, df), 1.0)
    p = p if n_boot > 1 else np.full(len(d), np.nan)
    return {"diff": d, "se": se, **_interval(d, se, df), **spread, "p": p, "p_holm": holm(p)}


def pair_tests(
    per_rater, per_image, n_boot: int = 1000, seed: int = 0, model="thurstone", prior="normal"
) -> dict:
    """:func:`jod_differences` of one block from its count tensors, without pandas.

    ``per_rater`` (raters x M x M) and ``per_image`` (images x M x M) hold the same comparisons
    (``c[u, i, j]``: times i beat j). For simulations that run thousands of blocks
    (:func:`study.analysis.simulate_pc.rejection_rates`).

    Returns
    -------
    dict
        ``jod`` (M scores, the first at 0), ``a, b`` (pair indices, a < b), then per pair
        ``diff, se, ci95_low, ci95_high, se_raters, se_images, df, p, p_holm``.
    """
    q, scores, sizes = _fit_block(per_rater, per_image, 0, (model, prior, n_boot, seed))
    ia, ib = np.triu_indices(len(q), 1)
    return {"jod": q, "a": ia, "b": ib, **_tests(q, ia, ib, scores, sizes, n_boot)}
