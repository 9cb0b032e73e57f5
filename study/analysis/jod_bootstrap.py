"""Uncertainty of a JOD scale over raters and images: resamples of raters, of images and of single
comparisons, fitted in batches by a warm-started Newton step, combined so that each source of
variance counts once (Satterthwaite df)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
from scipy.special import log_ndtr, stdtr, stdtrit

from .adjust import holm
from .graph import components
from .scaling import _LOG_PHI0, BOUND, NORMAL_SD, SIGMA, scale


def _laplacian_maps(m: int, ref: int) -> tuple:
    """For the M(M-1)/2 unordered pairs i < j: their indices, the difference map ``u`` (q @ u.T
    is q_i - q_j per pair, free scores only) and the map from per-pair curvatures to the
    flattened Hessian over the free scores (a weighted graph Laplacian, one matmul per batch)."""
    i, j = np.triu_indices(m, 1)
    rows = np.arange(len(i))
    free = np.flatnonzero(np.arange(m) != ref)
    u = np.zeros((len(i), m))
    u[rows, i], u[rows, j] = 1.0, -1.0
    lap = np.zeros((len(i), m, m))
    lap[rows, i, i] = lap[rows, j, j] = 1.0
    lap[rows, i, j] = lap[rows, j, i] = -1.0
    return i, j, free, u, lap[:, free][:, :, free].reshape(len(i), -1)


def _newton_batch(c: np.ndarray, ref: int, x0: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """:func:`thurstone_scale` with the normal prior for a batch of connected count matrices.

    The objective is convex (log Phi is concave, the prior quadratic), so damped Newton from the
    full data's scores reaches the optimum L-BFGS finds in a handful of steps, all resamples at
    once: that is what makes thousands of resamples per block cheap. Each unordered pair is
    counted once (thurstone_scale counts both orders: the objective doubles, the steps are the
    same); a resample leaves the batch once its step is below ``tol``.
    """
    n_b, m, _ = c.shape
    i, j, free, u, lap = _laplacian_maps(m, ref)
    uf = u[:, free]
    win, lose = c[:, i, j].astype(float), c[:, j, i].astype(float)
    prior = ((win + lose) > 0) / NORMAL_SD**2  # on the pairs compared in that resample
    q = np.tile(np.asarray(x0, dtype=float), (n_b, 1))

    def at(q, w, lo, pr):
        """Differences, z, log Phi(z), log Phi(-z) and the objective at scores q."""
        d = q @ u.T
        z = d / SIGMA
        lp, lq = log_ndtr(z), log_ndtr(-z)
        return d, z, lp, lq, -(w * lp + lo * lq).sum(1) + 0.5 * (pr * d * d).sum(1)

    cur = at(q, win, lose, prior)
    act = np.arange(n_b)  # resamples still moving
    for _ in range(100):
        w, lo, pr = win[act], lose[act], prior[act]
        d, z, lp, lq, f = cur
        half = _LOG_PHI0 - 0.5 * z * z
        rp, rq = np.exp(half - lp), np.exp(half - lq)  # phi / Phi: inverse Mills ratios
        g = -(w * rp - lo * rq) / SIGMA + pr * d
        h = (w * rp * (z + rp) + lo * rq * (rq - z)) / SIGMA**2 + pr
        hess = (h @ lap).reshape(len(act), len(free), len(free))
        step = -np.linalg.solve(hess, (g @ uf)[..., None])[..., 0]
        t = np.ones(len(act))
        base = q[act]
        for _ in range(40):  # halve the step where it does not descend
            trial = base.copy()
            trial[:, free] += t[:, None] * step
            new = at(trial, w, lo, pr)
            worse = new[4] > f + 1e-12 * np.abs(f)
            if not worse.any():
                break
            t[worse] /= 2
        q[act] = trial
        moving = np.abs(t[:, None] * step).max(axis=1) >= tol
        if not moving.any():
            break
        act = act[moving]
        cur = tuple(x[moving] for x in new)
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
            lost[b] = components(c[b] > 0)[0] > 1
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
        half = np.where(se > 0, stdtrit(df, 0.975) * se, 0.0)
    return {"ci95_low": est - half, "ci95_high": est + half}


def _fit_block(per_rater, per_image, ref: int, how: tuple) -> tuple:
    """Scores of a block's pooled counts and of its resamples (warm-started from them).

    ``how`` is ``(model, prior, n_boot, seed)``. Returns the scores, a dict of resampled scores
    per kind (empty without resamples) and the sizes (raters, images, comparisons). Seeded, so
    the same counts give the same answer: the last few are kept (:data:`_FITS`), and a report
    that asks for the scale, its differences and its figure fits each block once.
    """
    per_rater, per_image = np.asarray(per_rater), np.asarray(per_image)
    key = _fit_key(per_rater, per_image, ref, how)
    with _FITS_LOCK:
        fit = _FITS.get(key)
        if fit is not None:
            _FITS.move_to_end(key)
    if fit is None:
        fit = _fit_block_now(per_rater, per_image, ref, how)
        with _FITS_LOCK:  # web threads share it
            _FITS[key] = fit
            while len(_FITS) > _FITS_KEPT:
                _FITS.popitem(last=False)
    q, scores, sizes = fit
    return q.copy(), {k: s.copy() for k, s in scores.items()}, dict(sizes)


# The last few block fits by their inputs (a report's blocks, a page's tables then figures).
_FITS: OrderedDict = OrderedDict()
_FITS_KEPT = 16
_FITS_LOCK = threading.Lock()


def _fit_key(per_rater: np.ndarray, per_image: np.ndarray, ref: int, how: tuple) -> tuple:
    digest = hashlib.blake2b(digest_size=16)
    for a in (per_rater, per_image):
        digest.update(str((a.shape, a.dtype.str)).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest(), int(ref), tuple(how)


def _fit_block_now(per_rater, per_image, ref: int, how: tuple) -> tuple:
    model, prior, n_boot, seed = how
    total = per_rater.sum(axis=0)
    connected = components(total > 0)[0] == 1
    if model == "thurstone" and prior == "normal" and connected:
        # thurstone_scale's optimum by the resamples' Newton, from zero (convex: one optimum)
        q = _newton_batch(total[None], ref, np.zeros(len(total)))[0]
    else:
        q = scale(total, model, prior, ref)
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
        p = np.where(se > 0, 2 * stdtr(df, -np.abs(d) / se), 1.0)
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
