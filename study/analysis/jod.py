"""Scaling paired comparisons to JOD: Thurstone Case V (pwcmp) and Bradley-Terry.

Scores are in JOD (just-objectionable differences): conditions 1 JOD apart are told apart by 75%
of observers. Thurstone Case V: :math:`P(i \\succ j) = \\Phi((q_i - q_j)/\\sigma)` with
:math:`\\sigma = 1/\\Phi^{-1}(0.75) = 1.4826`, as pwcmp. Bradley-Terry:
:math:`P(i \\succ j) = 1/(1 + e^{-(s_i - s_j)})`, whose 75% point is :math:`\\ln 3`, so
:math:`s/\\ln 3` is on the same 1 JOD = 75% scale (the two links differ in the tails). Confidence
intervals resample raters with replacement (as pwcmp's ``pw_scale_bootstrp`` resamples
observers); differences between methods are tested on the same bootstrap distribution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_ndtr

from .order import order_methods
from .pairwise import check_counts, comparisons, identified, link_components, per_rater_counts
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


def _bootstrap(per_rater: np.ndarray, n_boot: int, seed: int, how: tuple) -> np.ndarray:
    """Scores (:func:`scale` with ``how``) of ``n_boot`` resamples of raters, seeded."""
    rng = np.random.default_rng(seed)
    r = len(per_rater)
    out = np.full((n_boot, per_rater.shape[1]), np.nan)
    for b in range(n_boot):
        weights = np.bincount(rng.integers(0, r, r), minlength=r)
        out[b] = scale(np.tensordot(weights, per_rater, axes=1), *how)
    return out


def _spread(samples: np.ndarray) -> dict:
    """Bootstrap std and 95% percentile interval per column (NaN with fewer than 2 resamples)."""
    if len(samples) < 2:
        return dict.fromkeys(("se", "ci95_low", "ci95_high"), np.nan)
    lo, hi = np.percentile(samples, [2.5, 97.5], axis=0)
    return {"se": samples.std(axis=0, ddof=1), "ci95_low": lo, "ci95_high": hi}


def _scaled(v, model, prior, per_image, reference, n_boot, seed, method_order):
    """Per block: its key, methods, pooled counts, point scores and bootstrap scores."""
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
        _, per_rater = per_rater_counts(g, methods)
        total = per_rater.sum(axis=0)
        q = scale(total, model, prior, ref)
        boot = _bootstrap(per_rater, n_boot, seed, (model, prior, ref))
        info = {"n_raters": len(per_rater), "note": _note(total.astype(float), model, prior)}
        yield dict(zip(by, key, strict=True)), methods, total, q, boot, info


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
    """JOD score of every method per dataset (images pooled) or per image, with bootstrap CIs.

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
        Bootstrap resamples of raters (0: no intervals) and the seed of their draw.

    Returns
    -------
    pandas.DataFrame
        ``dataset, [image,] method, jod, se`` (bootstrap std), ``ci95_low, ci95_high``
        (percentile), ``n`` (comparisons involving the method), ``n_raters, model, prior,
        reference, n_boot`` and ``note`` (disconnected graph, unanimous pairs).

    References
    ----------
    Perez-Ortiz & Mantiuk (2017), arXiv:1712.03686; pwcmp's pw_scale_bootstrp.m; Bradley & Terry
    (1952); Efron & Tibshirani (1993), percentile intervals.
    """
    v = comparisons(votes, kinds)
    frames = []
    for key, methods, total, q, boot, info in _scaled(
        v, model, prior, per_image, reference, n_boot, seed, method_order
    ):
        frames.append(
            pd.DataFrame(
                {
                    **key,
                    "method": methods,
                    "jod": q,
                    **_spread(boot),
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
    cols = ["method", "jod", "se", "ci95_low", "ci95_high", "n", "n_raters", "model", "prior"]
    return out[[*by, *cols, "reference", "n_boot", "note"]]


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
    """Is method a more or less preferred than method b? Bootstrap tests of JOD differences.

    For each pair within a dataset (or image), the difference :math:`q_a - q_b` is recomputed on
    the same resamples of raters as :func:`jod_table`; the two-sided p is
    :math:`2\\Phi(-|d| / \\mathrm{se}^*)`, se* the standard deviation of the resampled
    differences (the bootstrap standard-error test; a count of resamples past zero could not go
    below 2/(B + 1), too coarse for Holm over many pairs), and Holm's correction runs over the
    pairs of each dataset (or image).

    Returns
    -------
    pandas.DataFrame
        ``dataset, [image,] method_a, method_b`` (a first in ``method_order``), ``diff`` (JOD of
        a minus b), ``se, ci95_low, ci95_high, p, p_holm, significant_holm`` (p_holm < 0.05),
        ``n`` (direct comparisons of the pair), ``p_a`` (share of them a won) and ``n_boot``.

    References
    ----------
    Efron & Tibshirani (1993), section 16.4 (bootstrap tests); Holm (1979).
    """
    v = comparisons(votes, kinds)
    frames = []
    for key, methods, total, q, boot, _ in _scaled(
        v, model, prior, per_image, None, n_boot, seed, method_order
    ):
        ia, ib = np.triu_indices(len(methods), 1)
        d = boot[:, ia] - boot[:, ib]
        n = total[ia, ib] + total[ib, ia]
        # From the bootstrap standard error (normal approximation), as the metric panel's tests:
        # a count of resamples past zero bottoms out at 2 / (B + 1), which Holm over the 66
        # pairs of 12 methods never brings under 0.05 with 1,000 resamples.
        with np.errstate(invalid="ignore", divide="ignore"):
            se = d.std(axis=0, ddof=1) if n_boot > 1 else np.full(len(ia), np.nan)
            p = np.where(se > 0, 2 * stats.norm.sf(np.abs(q[ia] - q[ib]) / se), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, total[ia, ib] / n, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    **key,
                    "method_a": np.asarray(methods)[ia],
                    "method_b": np.asarray(methods)[ib],
                    "diff": q[ia] - q[ib],
                    **_spread(d),
                    "p": p if n_boot else np.nan,
                    "p_holm": holm(p) if n_boot else np.nan,
                    "n": n,
                    "p_a": share,
                    "n_boot": n_boot,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["significant_holm"] = out["p_holm"] < 0.05
    by = ["dataset", "image"] if per_image else ["dataset"]
    cols = ["diff", "se", "ci95_low", "ci95_high", "p", "p_holm", "significant_holm", "n", "p_a"]
    return out[[*by, "method_a", "method_b", *cols, "n_boot"]]


def mos_vs_jod(mos: pd.DataFrame, jod: pd.DataFrame) -> pd.DataFrame:
    """MOS (from ACR votes) against JOD (from comparisons) for each (dataset, method) in both.

    ``mos`` is :func:`study.analysis.mos_table` output, ``jod`` is dataset-level
    :func:`jod_table` output. The Spearman correlation is computed within each dataset (NaN with
    fewer than three methods): the two scales share no unit, only an order.

    Returns
    -------
    pandas.DataFrame
        ``dataset, method, mos, mos_ci95_low, mos_ci95_high, jod, jod_ci95_low, jod_ci95_high``,
        then per dataset (repeated on its rows) ``n_methods, spearman_rho, spearman_p``.
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
    rho = {}
    for ds, g in out.groupby("dataset", sort=True):
        r = stats.spearmanr(g["mos"], g["jod"]) if len(g) >= 3 else (np.nan, np.nan)
        rho[ds] = (len(g), float(r[0]), float(r[1]))
    stat = pd.DataFrame.from_dict(
        rho, orient="index", columns=["n_methods", "spearman_rho", "spearman_p"]
    )
    return out.join(stat, on="dataset")
