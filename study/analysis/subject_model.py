"""The maximum-likelihood subject model of ITU-T P.910 Annex E."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._codes import code
from .schema import ratings

MLE_VERSION = "p910-annex-e-ap-sureal-0.9.0"
_Z = 1.95996


def p910_mle(
    votes: pd.DataFrame,
    quality_std: str = "rater",
    max_iter: int = 1000,
    tol: float = 1e-8,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recover per-stimulus quality, rater bias and rater inconsistency (P.910 Annex E).

    Model: :math:`X_{jir} = \\psi_j + \\Delta_i + \\upsilon_i Z_{jir}`, :math:`Z \\sim N(0, 1)`,
    for stimulus j, rater i, repetition r. Solved by alternating projection (Li et al. 2020),
    as sureal's ``SubjectMLEModelProjectionSolver``:

    1. :math:`\\psi_j` = plain MOS; :math:`\\Delta_i = \\operatorname{mean}_{j,r}(x_{jir} - \\psi_j)`.
    2. Repeat until :math:`\\lVert\\psi - \\psi_{prev}\\rVert_2 <` ``tol`` (at most ``max_iter``):
       residual :math:`e_{jir} = x_{jir} - \\psi_j - \\Delta_i`;
       :math:`\\upsilon_i = \\operatorname{std}_{j,r}(e)` (ddof 0);
       :math:`\\psi_j = \\sum_{i,r} w_i (x_{jir} - \\Delta_i) / \\sum_{i,r} w_i`,
       :math:`w_i = 1/(\\upsilon_i^2 + 10^{-8})`;
       :math:`\\Delta_i = \\operatorname{mean}_{j,r}(x_{jir} - \\psi_j)`.
    3. Shift so that :math:`\\sum_i \\Delta_i = 0` (raters' mean bias is zero).

    Standard errors from the Fisher information: :math:`\\sigma(\\psi_j) =
    (\\sum_{i,r} \\upsilon_i^{-2})^{-1/2}` (``quality_std="rater"``, sureal MLE_CO_AP) or
    :math:`(\\sum_{i,r} \\upsilon_j^{-2})^{-1/2}` with :math:`\\upsilon_j` the std of the residuals
    of stimulus j (``"stimulus"``, sureal MLE_CO_AP2); :math:`\\sigma(\\Delta_i) =
    (\\sum_{j,r} \\upsilon_i^{-2})^{-1/2}`; 95% CI = +-1.95996 sigma. The CI of
    :math:`\\upsilon_i` is the chi-square interval
    :math:`[\\upsilon_i\\sqrt{n_i/\\chi^2_{0.975,n_i}},\\ \\upsilon_i\\sqrt{n_i/\\chi^2_{0.025,n_i}}]`.

    Parameters
    ----------
    votes : pandas.DataFrame
        Long vote table; ``kind == "rating"`` votes, repeats included. Missing votes are simply
        absent (partial designs are fine); a rater with a single vote gets inconsistency 0.

    Returns
    -------
    quality : pandas.DataFrame
        ``dataset, image, method, n, quality, quality_std, ci95_low, ci95_high``.
    raters : pandas.DataFrame
        ``rater, n_votes, mle_bias, mle_bias_std, mle_bias_ci95_low, mle_bias_ci95_high,
        mle_inconsistency, mle_inconsistency_std, mle_inconsistency_ci95_low,
        mle_inconsistency_ci95_high``. Both frames carry ``attrs`` ``estimator``,
        ``n_iter`` and ``converged``.

    References
    ----------
    ITU-T P.910 (2023), Annex E. Z. Li, C. G. Bampis, L. Krasula, L. Janowski, I. Katsavounidis,
    "A simple model for subject behavior in subjective experiments", IS&T HVEI 2020.
    Netflix sureal 0.9.0 ``SubjectMLEModelProjectionSolver`` / ``...Solver2``.
    """
    if quality_std not in ("rater", "stimulus"):
        raise ValueError(f"quality_std must be 'rater' or 'stimulus', got {quality_std!r}")
    c = code(ratings(votes))
    fit = _project(c, max_iter, tol)
    psi_std, delta_std, v_std, lo, hi = _uncertainty(c, fit, quality_std)
    # Only psi + delta is identified; zero mean bias fixes the split, as sureal does.
    shift = fit.delta.mean()
    delta = fit.delta - shift
    psi = fit.psi + shift
    v_s = fit.v_s
    estimator = f"{MLE_VERSION}/quality_std={quality_std}"
    quality = c.stimuli.copy()
    quality["n"] = fit.n_e.astype(int)
    quality["quality"] = psi
    quality["quality_std"] = psi_std
    quality["ci95_low"] = psi - _Z * psi_std
    quality["ci95_high"] = psi + _Z * psi_std
    raters = pd.DataFrame(
        {
            "rater": c.raters,
            "n_votes": fit.n_s.astype(int),
            "mle_bias": delta,
            "mle_bias_std": delta_std,
            "mle_bias_ci95_low": delta - _Z * delta_std,
            "mle_bias_ci95_high": delta + _Z * delta_std,
            "mle_inconsistency": v_s,
            "mle_inconsistency_std": v_std,
            "mle_inconsistency_ci95_low": v_s - lo,
            "mle_inconsistency_ci95_high": v_s + hi,
        }
    )
    for df in (quality, raters):
        df.attrs.update(estimator=estimator, n_iter=fit.n_iter, converged=fit.converged)
    return quality, raters


@dataclass(frozen=True)
class _Fit:
    """Where the alternating projection stopped, before the biases are centred."""

    psi: np.ndarray  # quality per stimulus
    delta: np.ndarray  # bias per rater
    v_s: np.ndarray  # inconsistency per rater
    v_e: np.ndarray  # residual std per stimulus
    n_e: np.ndarray  # votes per stimulus
    n_s: np.ndarray  # votes per rater
    n_iter: int
    converged: bool


def _project(c, max_iter: int, tol: float) -> _Fit:
    """Steps 1 and 2 of :func:`p910_mle`: start from plain MOS, iterate until psi settles."""
    x, e, s = c.x, c.e, c.s
    n_e = np.bincount(e, minlength=c.n_stimuli).astype(float)
    n_s = np.bincount(s, minlength=c.n_raters).astype(float)
    psi = c.per_stimulus(x) / n_e
    delta = c.per_rater(x - psi[e]) / n_s
    converged = False
    it = 0
    v_s = v_e = np.zeros(0)
    while it < max_iter:
        prev = psi
        res = x - psi[e] - delta[s]
        v_s = _std(c.per_rater, s, res, n_s)
        v_e = _std(c.per_stimulus, e, res, n_e)
        w = 1.0 / (v_s**2 + 1e-8)
        ws = w[s]
        psi = c.per_stimulus(ws * (x - delta[s])) / c.per_stimulus(ws)
        delta = c.per_rater(x - psi[e]) / n_s
        it += 1
        if np.linalg.norm(prev - psi) < tol:
            converged = True
            break
    return _Fit(psi, delta, v_s, v_e, n_e, n_s, it, converged)


def _uncertainty(c, fit: _Fit, quality_std: str) -> tuple[np.ndarray, ...]:
    """Standard errors of quality, bias and inconsistency, and the inconsistency CI's reach.

    Returns ``psi_std, delta_std, v_std, lo, hi``: the CI of inconsistency is
    ``[v_s - lo, v_s + hi]``. Zero information gives an infinite standard error.
    """
    x, e, s = c.x, c.e, c.s
    n_e, n_s, v_s = fit.n_e, fit.n_s, fit.v_s
    with np.errstate(divide="ignore", invalid="ignore"):
        if quality_std == "rater":
            info = c.per_stimulus(1.0 / v_s[s] ** 2)
        else:
            info = n_e / fit.v_e**2
        psi_std = 1.0 / np.sqrt(np.maximum(0.0, info))
        delta_std = 1.0 / np.sqrt(np.maximum(0.0, n_s / v_s**2))
        res = x - fit.psi[e] - fit.delta[s]
        lpp = n_s / v_s**2 - 3.0 * c.per_rater(res**2) / v_s**4
        v_std = 1.0 / np.sqrt(np.maximum(0.0, -lpp))
        lo = (1 - np.sqrt(n_s / stats.chi2.ppf(0.975, n_s))) * v_s
        hi = (np.sqrt(n_s / stats.chi2.ppf(0.025, n_s)) - 1) * v_s
    return psi_std, delta_std, v_std, lo, hi


def _std(per, idx: np.ndarray, res: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Population standard deviation (ddof 0) of ``res`` within each group of ``idx``."""
    m = per(res) / n
    return np.sqrt(per((res - m[idx]) ** 2) / n)
