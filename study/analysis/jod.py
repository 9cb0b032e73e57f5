"""Scaling paired comparisons to JOD: Thurstone Case V (pwcmp) and Bradley-Terry.

Scores are in JOD (just-objectionable differences): conditions 1 JOD apart are told apart by 75%
of observers. Thurstone Case V: :math:`P(i \\succ j) = \\Phi((q_i - q_j)/\\sigma)` with
:math:`\\sigma = 1/\\Phi^{-1}(0.75) = 1.4826`, as pwcmp. Bradley-Terry:
:math:`P(i \\succ j) = 1/(1 + e^{-(s_i - s_j)})`, whose 75% point is :math:`\\ln 3`, so
:math:`s/\\ln 3` is on the same 1 JOD = 75% scale (the two links differ in the tails). Confidence
intervals and tests of differences generalise over raters *and* images: the resamples of raters
(as pwcmp's ``pw_scale_bootstrp`` resamples observers), of images and of comparisons are combined
so that each source of variance counts once (:func:`_spread`); pwcmp's observer bootstrap alone
treats the images as fixed, and called a third of equal pairs different on a null with a method
x image interaction (tests/test_analysis_jod_calibration.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import permutations

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_ndtr

from .order import order_methods
from .pairwise import check_counts, comparisons, identified, link_components, per_unit_counts
from .schema import VotesError
from .significance import holm

SIGMA = float(1.0 / stats.norm.ppf(0.75))  # 1.482602: Phi(1 / SIGMA) = 0.75
BT_UNIT = float(np.log(3.0))  # logistic 75% point: 1 JOD in Bradley-Terry log-strength
PRIORS = {
    "normal": "independent N(0, 4^2) JOD^2 prior on the distance of every compared pair",
    "pwcmp": "pwcmp's distance prior ('gaussian' in pw_scale.m, its default since 2017-09)",
    "none": "plain maximum likelihood",
}
NORMAL_SD = 4.0  # JOD; a pair 8 JOD apart is preferred 99.99997% of the time
MODELS = ("thurstone", "bradley_terry")
BOUND = 30.0  # JOD from the reference, a cap for diverging scores: Phi(30 / SIGMA) = 1 - 1e-91
_EPS = 1e-8  # pwcmp's epsilon in the prior's normalisation
_FLOOR = 0.1  # pwcmp adds 0.1 to the prior before its log
_LOG_PHI0 = -0.5 * np.log(2.0 * np.pi)


def _thurstone_nll(x, free, i, j, win, lose, k, m, prior):
    """Negative log-posterior of pwcmp's pw_scale and its gradient over the free scores."""
    q = np.zeros(len(free))
    q[free] = x
    z = (q[i] - q[j]) / SIGMA
    lp, lq = log_ndtr(z), log_ndtr(-z)
    rp, rq = np.exp(_LOG_PHI0 - 0.5 * z * z - lp), np.exp(_LOG_PHI0 - 0.5 * z * z - lq)
    nll = -(win * lp + lose * lq).sum()
    g = -(win * rp - lose * rq) / SIGMA  # d nll / d (q_i - q_j), per ordered pair
    if prior == "pwcmp":
        a = np.exp(lp[:, None] * k[None, :] + lq[:, None] * m[None, :])  # pair e at answer f
        s = a.sum(axis=0) + _EPS
        pr = ((a + _EPS) / s).sum(axis=1)
        nll -= np.log(pr + _FLOOR).sum()
        da = a * (k[None, :] * rp[:, None] - m[None, :] * rq[:, None]) / SIGMA
        w = 1.0 / (pr + _FLOOR)
        c = (w[:, None] * (a + _EPS)).sum(axis=0) / s**2
        g -= (da * (w[:, None] / s[None, :] - c[None, :])).sum(axis=1)
    elif prior == "normal":  # each ordered pair, as the likelihood: counted twice
        nll += (q[i] - q[j]) @ (q[i] - q[j]) / (2 * NORMAL_SD**2)
        g += (q[i] - q[j]) / NORMAL_SD**2
    grad = np.bincount(i, g, len(free)) - np.bincount(j, g, len(free))
    return nll, grad[free]


def thurstone_scale(counts, prior: str = "normal", reference: int = 0) -> np.ndarray:
    r"""Thurstone Case V maximum-likelihood (or MAP) scores in JOD from a count matrix.

    A port of pwcmp's ``pw_scale`` (Perez-Ortiz & Mantiuk 2017): likelihood
    :math:`\prod_{e} P_e^{c_{ij}} (1 - P_e)^{c_{ji}}` over every ordered pair :math:`e = (i, j)`
    compared at least once (so, as in pwcmp, each unordered pair counts twice), with
    :math:`P_e = \Phi((q_i - q_j)/1.4826)`. ``prior="pwcmp"`` multiplies in pwcmp's distance
    prior (its ``'gaussian'``): with unanimous answers moved one vote towards a split
    (:math:`k_f`: 0 -> 1, n -> n - 1) and :math:`a_{ef} = P_e^{k_f}(1 - P_e)^{n_f - k_f}`,
    :math:`\pi_e = \sum_f (a_{ef} + \epsilon)/(\sum_{e'} a_{e'f} + \epsilon)`, and the
    log-posterior adds :math:`\sum_e \log(\pi_e + 0.1)`: a distance is likely when the other
    pairs' answers make it likely. That keeps a unanimous pair finite when votes are few (up to
    ~10 a pair in our tests) but not when a method wins 30 of 30 against all others: the term is
    then flat. ``prior="normal"`` (ours, the default) adds :math:`-d_e^2/(2 \cdot 4^2)` per
    ordered pair instead, which keeps every distance finite and barely moves well-measured ones.
    Disconnected components are tied as pwcmp does (:func:`link_components`). ``reference`` (an
    index) is fixed at 0 (pwcmp's ``fix0``); a diverging score (no prior, or pwcmp's failing)
    stops where the likelihood no longer moves, at most 30 JOD from it.

    References
    ----------
    Perez-Ortiz & Mantiuk (2017), arXiv:1712.03686; pwcmp, github.com/mantiuk/pwcmp, pw_scale.m
    (the prior as revised 2017-09-13, with analytic gradients).
    """
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    c = link_components(counts)
    i, j = np.nonzero(c + c.T)
    win, lose = c[i, j], c[j, i]
    n = win + lose
    k = win.copy()
    k[lose == 0] -= 1  # unanimous for i: n -> n - 1
    k[win == 0] = 1  # unanimous against i: 0 -> 1
    free = np.arange(len(c)) != reference
    data = (i, j, win, lose, k, n - k)
    if prior != "pwcmp":  # convex: one start
        return _minimise(_thurstone_nll, free, (*data, prior), BOUND)[0]
    # The prior makes the objective multimodal: from pwcmp's start (zeros) L-BFGS can stop in a
    # basin that shrinks every distance, and from the ML scores a unanimous pair stays diverged
    # (the prior is flat there). The third start, ML with half a vote added to both sides of
    # every compared pair, is finite and near the data; the best of the three is kept.
    half = (i, j, win + 0.5, lose + 0.5, k, n - k, "none")
    starts = [
        None,
        *(_minimise(_thurstone_nll, free, d, BOUND)[0][free] for d in ((*data, "none"), half)),
    ]
    fits = [_minimise(_thurstone_nll, free, (*data, prior), BOUND, x0) for x0 in starts]
    return min(fits, key=lambda f: f[1])[0]


def _minimise(fun, free: np.ndarray, args: tuple, bound: float, x0=None) -> tuple:
    """All scores (the fixed one at 0, the free ones minimising ``fun``, clipped to +-``bound``)
    and the minimum. Unbounded L-BFGS: its bounded variant is 20x slower on a busy machine."""
    res = optimize.minimize(
        fun,
        np.zeros(free.sum()) if x0 is None else x0,
        args=(free, *args),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-9, "ftol": 1e-15, "maxiter": 5000},
    )
    q = np.zeros(len(free))
    q[free] = np.clip(res.x, -bound, bound)
    return q, res.fun


def _bt_nll(x, free, c, alpha):
    s = np.zeros(len(free))
    s[free] = x
    d = s[:, None] - s[None, :]
    nll = (c * np.logaddexp(0.0, -d)).sum() + alpha * (s**2).sum()
    r = c * expit(-d)  # c_ij * P(j beats i)
    grad = -(r.sum(axis=1) - r.sum(axis=0)) + 2 * alpha * s
    return nll, grad[free]


def bradley_terry_strengths(counts, alpha: float = 0.0) -> np.ndarray:
    """Bradley-Terry log-strengths (natural units) by maximum likelihood.

    Minimises :math:`\\sum_{ij} c_{ij} \\log(1 + e^{-(s_i - s_j)}) + \\alpha \\sum_i s_i^2`, the
    objective of ``choix.opt_pairwise`` (its ``alpha``). With ``alpha = 0`` the scores are
    centred (mean 0); a method that never lost (or never won) then diverges (stops where the
    likelihood no longer moves).
    """
    c = check_counts(counts)
    free = np.arange(len(c)) != (0 if alpha == 0 else -1)  # alpha = 0: fix one, centre after
    s = _minimise(_bt_nll, free, (c, alpha), BOUND * BT_UNIT)[0]
    return s - s.mean() if alpha == 0 else s


def bradley_terry_scale(counts, alpha: float = 0.0, reference: int = 0) -> np.ndarray:
    """Bradley-Terry scores in JOD: :math:`(s - s_{ref})/\\ln 3`, so 75% preference is 1 JOD."""
    s = bradley_terry_strengths(counts, alpha)
    return (s - s[reference]) / BT_UNIT


def scale(counts, model: str = "thurstone", prior: str = "normal", reference: int = 0):
    """JOD scores of a count matrix by ``model`` (``prior`` applies to Thurstone only)."""
    if model == "thurstone":
        return thurstone_scale(counts, prior, reference)
    if model == "bradley_terry":
        return bradley_terry_scale(counts, 0.0, reference)
    raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")


def _note(total: np.ndarray, model: str, prior: str) -> str:
    """Why a block's scores are not plain, finite maximum-likelihood estimates."""
    notes = []
    if connected_components((total + total.T) > 0, directed=False)[0] > 1:
        notes.append("comparison graph disconnected: components tied at their best method (pwcmp)")
    if not identified(total):
        split = ((total > 0) & (total.T > 0)).any()
        if model == "thurstone" and (prior == "normal" or (prior == "pwcmp" and split)):
            notes.append("unanimous or one-way comparisons: those distances rest on the prior")
        else:
            notes.append("unanimous or one-way comparisons: ML diverges, scores are arbitrary")
    return "; ".join(notes)


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


def _scaled(v, model, prior, per_image, reference, n_boot, seed, method_order):
    """Per block: its key, methods, pooled counts, point scores, resampled scores and sizes."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    by = ["dataset", "image"] if per_image else ["dataset"]
    for key, g in v.groupby(by, sort=True):
        methods = order_methods(set(g["method_a"]) | set(g["method_b"]), method_order)
        if reference is not None and reference not in methods:
            raise VotesError(f"reference {reference!r} was not compared in {', '.join(key)}")
        ref = methods.index(reference) if reference is not None else 0
        per_rater, per_img = (per_unit_counts(g, methods, u)[1] for u in ("rater", "image"))
        total = per_rater.sum(axis=0)
        q, scores, sizes = _fit_block(per_rater, per_img, ref, (model, prior, n_boot, seed))
        info = {
            "n_raters": sizes["raters"],
            "n_images": sizes["images"],
            "over": _over(sizes["raters"], sizes["images"]),
            "note": _note(total.astype(float), model, prior),
        }
        yield dict(zip(by, key, strict=True)), methods, total, q, scores, sizes, info


def jod_table(
    votes: pd.DataFrame,
    model: str = "thurstone",
    prior: str = "normal",
    per_image: bool = False,
    reference: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    method_order: Sequence[str] | None = None,
    kinds: tuple[str, ...] = ("rating",),
) -> pd.DataFrame:
    """JOD score of every method per dataset (images pooled) or per image, with 95% CIs that
    generalise over raters and images.

    Parameters
    ----------
    votes : pandas.DataFrame
        Comparison votes (:func:`study.analysis.pairwise.validate_comparisons`).
    model : {"thurstone", "bradley_terry"}
        :func:`thurstone_scale` (pwcmp) or :func:`bradley_terry_scale` (logistic, in JOD).
    prior : {"normal", "pwcmp", "none"}
        Thurstone only (:func:`thurstone_scale`): a weak normal prior on distances (default),
        pwcmp's own distance prior, or plain likelihood.
    per_image : bool
        Scale each image on its own instead of pooling a dataset's images (pooling assumes the
        methods are equally far apart on every image).
    reference : str, optional
        The method fixed at 0 JOD (e.g. the HR image); default the first in ``method_order``.
    n_boot, seed
        Resamples of each kind (raters, images, comparisons; 0: no intervals) and their seed.

    Returns
    -------
    pandas.DataFrame
        ``dataset, [image,] method, jod, se`` (:func:`_spread`: raters and images both
        sampled), ``ci95_low, ci95_high`` (jod +- t(0.975, df) se), ``se_raters, se_images``
        (one-way bootstrap standard errors), ``df``, ``n`` (comparisons involving the method),
        ``n_raters, n_images, over`` (what the interval generalises over), ``model, prior,
        reference, n_boot`` and ``note`` (disconnected graph, unanimous pairs).

    References
    ----------
    Perez-Ortiz & Mantiuk (2017), arXiv:1712.03686; pwcmp's pw_scale_bootstrp.m; Bradley & Terry
    (1952); McCullagh (2000), Bernoulli 6; Owen (2007), Annals of Applied Statistics 1.
    """
    v = comparisons(votes, kinds)
    frames = []
    for key, methods, total, q, scores, sizes, info in _scaled(
        v, model, prior, per_image, reference, n_boot, seed, method_order
    ):
        spread = _spread(scores, np.eye(len(methods)), sizes, n_boot)
        frames.append(
            pd.DataFrame(
                {
                    **key,
                    "method": methods,
                    "jod": q,
                    "se": spread["se"],
                    **_interval(q, spread["se"], spread["df"]),
                    **spread,
                    "n": total.sum(axis=0) + total.sum(axis=1),
                    **info,
                    "model": model,
                    "prior": prior if model == "thurstone" else "none",
                    "reference": methods[methods.index(reference) if reference else 0],
                    "n_boot": n_boot,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    by = ["dataset", "image"] if per_image else ["dataset"]
    cols = ["method", "jod", "se", "ci95_low", "ci95_high", "se_raters", "se_images", "df", "n"]
    info = ["n_raters", "n_images", "over", "model", "prior", "reference", "n_boot", "note"]
    return out[[*by, *cols, *info]]


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


def jod_differences(
    votes: pd.DataFrame,
    model: str = "thurstone",
    prior: str = "normal",
    per_image: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    method_order: Sequence[str] | None = None,
    kinds: tuple[str, ...] = ("rating",),
) -> pd.DataFrame:
    """Is method a more or less preferred than method b, for other raters and other images?

    For each pair within a dataset (or image), the difference :math:`q_a - q_b` is recomputed on
    the resamples of :func:`jod_table`; its standard error combines the resamples of raters, of
    images and of comparisons (:func:`_spread`), so a method that wins on some images and loses
    on others is not called better because many raters saw the same images. Two-sided
    :math:`p = 2 T_{df}(-|d| / \\mathrm{se})`; Holm's correction runs over the pairs of each
    dataset (or image); ``verdict`` says it in a sentence (:func:`verdict`).

    Returns
    -------
    pandas.DataFrame
        ``dataset, [image,] method_a, method_b`` (a first in ``method_order``), ``jod_a, jod_b,
        diff`` (a minus b), ``se, ci95_low, ci95_high, se_raters, se_images, df, p, p_holm,
        significant_holm`` (p_holm < 0.05), ``n`` (direct comparisons of the pair), ``p_a``
        (share of them a won), ``over``, ``n_boot`` and ``verdict``.

    References
    ----------
    Efron & Tibshirani (1993), section 16.4 (bootstrap tests); McCullagh (2000); Owen (2007);
    Satterthwaite (1946); Holm (1979).
    """
    v = comparisons(votes, kinds)
    frames = []
    for key, methods, total, q, scores, sizes, info in _scaled(
        v, model, prior, per_image, None, n_boot, seed, method_order
    ):
        ia, ib = np.triu_indices(len(methods), 1)
        n = total[ia, ib] + total[ib, ia]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, total[ia, ib] / n, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    **key,
                    "method_a": np.asarray(methods)[ia],
                    "method_b": np.asarray(methods)[ib],
                    "jod_a": q[ia],
                    "jod_b": q[ib],
                    **_tests(q, ia, ib, scores, sizes, n_boot),
                    "n": n,
                    "p_a": share,
                    "over": info["over"],
                    "n_boot": n_boot,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["significant_holm"] = out["p_holm"] < 0.05
    out["verdict"] = verdicts(out)
    by = ["dataset", "image"] if per_image else ["dataset"]
    cols = ["jod_a", "jod_b", "diff", "se", "ci95_low", "ci95_high", "se_raters", "se_images"]
    cols += ["df", "p", "p_holm", "significant_holm", "n", "p_a", "over", "n_boot", "verdict"]
    return out[[*by, "method_a", "method_b", *cols]]


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "p not computed"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.995 else "p = 1"


def verdict(row: Mapping, alpha: float = 0.05) -> str:
    """One sentence on one pair of :func:`jod_differences` (a row, or a mapping of its fields).

    The preferred method comes first (the difference and interval turned to match); the
    sentence names what the interval generalises over and that p is Holm-adjusted, e.g.
    "SRGAN is preferred to SRResNet (JOD 2.41 vs 1.57, difference 0.84, 95% CI 0.41 to 1.27,
    over raters and images; p = 0.002, Holm)" or "No significant difference between ...".
    """
    a, b, ja, jb = row["method_a"], row["method_b"], row["jod_a"], row["jod_b"]
    note = row.get("note")
    if isinstance(note, str) and note.startswith("no verdict"):
        return f"No verdict on {a} vs {b}: {note[len('no verdict: ') :]}"
    d, lo, hi = row["diff"], row["ci95_low"], row["ci95_high"]
    if d < 0:  # b preferred: state it from b's side
        a, b, ja, jb, d, lo, hi = b, a, jb, ja, -d, -hi, -lo
    where = f"{row['dataset']}, image {row['image']}: " if "image" in row else ""
    ci = f"95% CI {lo:.2f} to {hi:.2f}" if np.isfinite(lo) else "no interval"
    detail = f"JOD {ja:.2f} vs {jb:.2f}, difference {d:.2f}, {ci}, over {row['over']}; "
    detail += f"{_p_text(row['p_holm'])}, Holm"
    if row["p_holm"] < alpha:
        return f"{where}{a} is preferred to {b} ({detail})"
    return f"{where}No significant difference between {a} and {b} ({detail})"


def verdicts(differences: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """:func:`verdict` of every row of :func:`jod_differences`, prefixed by the dataset when
    there are several."""
    several = differences["dataset"].nunique() > 1 and "image" not in differences.columns
    out = []
    for row in differences.to_dict("records"):
        text = verdict(row, alpha)
        out.append(f"{row['dataset']}: {text}" if several else text)
    return out


EXACT_MAX = 9  # 9! = 362,880 orders: enumerated in well under a second
N_PERMUTATIONS = 9999


def rank_correlation(x, y, seed: int = 0) -> tuple[float, float, str]:
    """Spearman's rho and its two-sided permutation p, with the method that gave p.

    Up to ``EXACT_MAX`` values every order of ``y`` against ``x`` is enumerated, so p is exact
    (at n = 5 it cannot go below 2/120: both perfect orders); beyond, ``N_PERMUTATIONS`` seeded
    random orders, :math:`p = (1 + \\#\\{|\\rho^*| \\ge |\\rho|\\})/(1 + B)` (Phipson & Smyth
    2010). The t approximation scipy reports is far too small on a handful of methods.

    Returns
    -------
    tuple
        ``(rho, p, method)``; NaN rho and p with fewer than three values or a constant one.
    """
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    n = len(rx)
    cx, cy = rx - rx.mean(), ry - ry.mean()
    norm = np.sqrt((cx @ cx) * (cy @ cy))
    if n < 3 or norm == 0:
        return np.nan, np.nan, "not computed (fewer than 3 methods, or a constant scale)"
    rho = float(cx @ cy / norm)
    if n <= EXACT_MAX:
        orders = np.array(list(permutations(range(n))))
        method = f"exact permutation (all {len(orders):,} orders)"
    else:
        orders = np.argsort(np.random.default_rng(seed).random((N_PERMUTATIONS, n)), axis=1)
        method = f"permutation ({N_PERMUTATIONS:,} seeded random orders)"
    null = np.abs(cy[orders] @ cx / norm)
    hits = int((null >= abs(rho) - 1e-12).sum())
    p = hits / len(orders) if n <= EXACT_MAX else (1 + hits) / (1 + len(orders))
    return rho, float(p), method


def mos_vs_jod(mos: pd.DataFrame, jod: pd.DataFrame) -> pd.DataFrame:
    """MOS (from ACR votes) against JOD (from comparisons) for each (dataset, method) in both.

    ``mos`` is :func:`study.analysis.mos_table` output, ``jod`` is dataset-level
    :func:`jod_table` output. The Spearman correlation is computed within each dataset (NaN with
    fewer than three methods): the two scales share no unit, only an order. Its p is a
    permutation p (:func:`rank_correlation`): exact up to nine methods.

    Returns
    -------
    pandas.DataFrame
        ``dataset, method, mos, mos_ci95_low, mos_ci95_high, jod, jod_ci95_low, jod_ci95_high``,
        then per dataset (repeated on its rows) ``n_methods, spearman_rho, spearman_p,
        spearman_p_method``.
    """
    if "image" in jod.columns:
        raise VotesError("jod table is per image: pass the dataset-level jod_table")
    cols, parts = ["dataset", "method"], []
    for name, t in (("mos", mos), ("jod", jod)):
        missing = [c for c in (*cols, name, "ci95_low", "ci95_high") if c not in t.columns]
        if missing:
            raise VotesError(f"{name} table lacks column(s) {', '.join(missing)}")
        ci = {"ci95_low": f"{name}_ci95_low", "ci95_high": f"{name}_ci95_high"}
        t = t[[*cols, name, "ci95_low", "ci95_high"]].rename(columns=ci)
        parts.append(t.astype({"dataset": str, "method": str}))
    out = parts[0].merge(parts[1], on=cols)  # in the MOS table's order
    if out.empty:
        raise VotesError("no (dataset, method) has both a MOS and a JOD")
    rho = {ds: (len(g), *rank_correlation(g["mos"], g["jod"])) for ds, g in out.groupby("dataset")}
    stat = pd.DataFrame.from_dict(
        rho,
        orient="index",
        columns=["n_methods", "spearman_rho", "spearman_p", "spearman_p_method"],
    )
    return out.join(stat, on="dataset")
