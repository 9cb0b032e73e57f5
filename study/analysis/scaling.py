"""Scaling paired comparisons: Thurstone Case V (pwcmp's likelihood and priors; 1 JOD = 75%
preference) and Bradley-Terry (in JOD units), fitted from a count matrix with the reference at 0."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_ndtr, ndtri

from .graph import components
from .pairwise import check_counts, identified, link_components

SIGMA = float(1.0 / ndtri(0.75))  # 1.482602: Phi(1 / SIGMA) = 0.75
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
    from scipy import optimize  # on use: the paired report's usual fits are Newton's, below

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
    if alpha == 0 and len(c) > 1 and identified(c):
        s = _bt_newton(c)  # the same optimum, without loading scipy.optimize
        return s - s.mean()
    free = np.arange(len(c)) != (0 if alpha == 0 else -1)  # alpha = 0: fix one, centre after
    s = _minimise(_bt_nll, free, (c, alpha), BOUND * BT_UNIT)[0]
    return s - s.mean() if alpha == 0 else s


def _bt_newton(c: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Bradley-Terry ML log-strengths, the first fixed at 0, by damped Newton: the likelihood is
    concave and, the comparison graph strongly connected (:func:`identified`), has one finite
    optimum, the one L-BFGS finds."""
    i, j = np.nonzero(np.triu((c + c.T) > 0, 1))
    w, lo = c[i, j].astype(float), c[j, i].astype(float)
    u = np.zeros((len(i), len(c)))
    u[np.arange(len(i)), i], u[np.arange(len(i)), j] = 1.0, -1.0
    uf = u[:, 1:]

    def nll(s):
        d = u @ s
        return (w * np.logaddexp(0.0, -d) + lo * np.logaddexp(0.0, d)).sum(), d

    s = np.zeros(len(c))
    f, d = nll(s)
    for _ in range(200):
        p = expit(d)  # P(i beats j)
        g = uf.T @ (-w * (1 - p) + lo * p)
        step = -np.linalg.solve(uf.T @ (((w + lo) * p * (1 - p))[:, None] * uf), g)
        t = 1.0
        for _ in range(60):  # halve the step until it descends
            trial = s.copy()
            trial[1:] += t * step
            f_new, d_new = nll(trial)
            if f_new <= f + 1e-12 * abs(f):
                break
            t /= 2
        s, f, d = trial, f_new, d_new
        if np.abs(t * step).max() < tol:
            break
    return s


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
    if components(total > 0)[0] > 1:
        notes.append("comparison graph disconnected: components tied at their best method (pwcmp)")
    if not identified(total):
        split = ((total > 0) & (total.T > 0)).any()
        if model == "thurstone" and (prior == "normal" or (prior == "pwcmp" and split)):
            notes.append("unanimous or one-way comparisons: those distances rest on the prior")
        else:
            notes.append("unanimous or one-way comparisons: ML diverges, scores are arbitrary")
    return "; ".join(notes)
