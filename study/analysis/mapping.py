"""The monotonic mapping of an objective metric onto the MOS scale (ITU-T P.1401): the VQEG
5-parameter logistic where it is monotonic over the data, else a 4-parameter logistic or a
straight line, whichever fits better; never worse than a line."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize


def vqeg_logistic(x, b1, b2, b3, b4, b5):
    """VQEG 5-parameter logistic: :math:`b_1(1/2 - 1/(1 + e^{b_2 (x - b_3)})) + b_4 x + b_5`."""
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(np.clip(b2 * (x - b3), -500, 500)))) + b4 * x + b5


def _logistic_jacobian(x, b1, b2, b3, b4, b5):
    """Partial derivatives of :func:`vqeg_logistic` in its five parameters, one column each.

    Given to the optimiser, they replace its finite differences (six evaluations per step):
    the fits of a paper-size report take a fifth of the time and converge to the same optimum.
    """
    s = 1.0 / (1.0 + np.exp(np.clip(b2 * (x - b3), -500, 500)))
    ds = b1 * s * (1.0 - s)
    return np.column_stack([0.5 - s, ds * (x - b3), -ds * b2, x, np.ones_like(x)])


# How a note of correlation.csv begins when the logistic could not be fitted to the points.
FIT_FAILED = "logistic fit failed, so PLCC and RMSE are left empty"


# Levenberg-Marquardt stops here and keeps its best iterate: on near-linear data the logistic's
# parameters trade off along a flat valley (b1 against b4 as b2 -> 0) where a convergence test
# is never met, although the fit there is as good as it gets (never worse than a straight line).
_MAX_EVALUATIONS = 200
# The notes of a monotonic mapping that is not the 5-parameter logistic (P.1401 asks for one).
NOT_MONOTONIC = "the 5-parameter logistic was not monotonic over the data"
LOGISTIC_4 = "4-parameter logistic (b4 = 0, d = 4)"
STRAIGHT_LINE = "straight line (d = 2)"


def _least_squares(
    xs: np.ndarray, y: np.ndarray, p0, free: list[int], max_nfev: int = _MAX_EVALUATIONS
) -> np.ndarray:
    """Levenberg-Marquardt on the parameters ``free`` of :func:`vqeg_logistic` (others at p0),
    with the analytic Jacobian; its best iterate, all five parameters.

    MINPACK's lmder, called as ``scipy.optimize.least_squares(method="lm")`` calls it (the same
    tolerances, step bound and scaling: the same iterates, to the last bit), through
    ``leastsq``, which adds no bookkeeping per evaluation; the Jacobian reuses the logistic of
    the residual just evaluated at the same point. A paper-size report's fits took a third of
    the time."""
    start = np.array(p0, dtype=float)
    cols = list(free)
    model = _Logistic(xs, y, start, cols)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if not np.all(np.isfinite(model.residual(start[cols]))):  # as least_squares refuses it
            raise ValueError("Residuals are not finite in the initial point.")
        b = optimize.leastsq(
            model.residual,
            start[cols],
            Dfun=model.jacobian,
            full_output=True,
            col_deriv=True,
            # least_squares' defaults for "lm" since SciPy 1.16 (x_scale="jac": diag None)
            ftol=1e-8,
            xtol=1e-8,
            gtol=1e-8,
            maxfev=max_nfev,
            factor=100.0,
            diag=None,
        )[0]
    return model.full(np.atleast_1d(b))


class _Logistic:
    """The residuals of :func:`vqeg_logistic` and their Jacobian in the free parameters, for
    MINPACK: the same arithmetic as :func:`vqeg_logistic` and :func:`_logistic_jacobian`, with
    the logistic of the last point kept for the Jacobian that follows it."""

    def __init__(self, xs, y, start, cols):
        self.xs, self.y, self.start, self.cols = xs, y, start, cols
        self.all = len(cols) == len(start)
        self._at, self._s = None, None

    def full(self, b):
        if self.all:
            return np.array(b, dtype=float)
        p = self.start.copy()
        p[self.cols] = b
        return p

    def _logistic(self, p):
        at = p.tobytes()
        if at != self._at:
            # vqeg_logistic's 1 / (1 + exp(clip(b2 (x - b3)))), operation for operation, in place
            self._at = at
            t = self.xs - p[2]
            t *= p[1]
            np.maximum(t, -500.0, out=t)
            np.minimum(t, 500.0, out=t)
            np.exp(t, out=t)
            t += 1.0
            self._s = np.divide(1.0, t, out=t)
        return self._s

    def residual(self, b):
        p = self.full(b)
        b1, _, _, b4, b5 = p.tolist()
        r = 0.5 - self._logistic(p)
        r *= b1
        r += b4 * self.xs
        r += b5
        r -= self.y
        return r

    def jacobian(self, b):
        p = self.full(b)
        b1, b2, b3, _, _ = p.tolist()
        s = self._logistic(p)
        ds = b1 * s
        ds *= 1.0 - s
        # A row per parameter (col_deriv): MINPACK's own layout, no transposed copy.
        out = np.empty((len(self.cols), len(self.xs)))
        for j, c in enumerate(self.cols):
            if c == 0:
                np.subtract(0.5, s, out=out[j])
            elif c == 1:
                np.multiply(ds, np.subtract(self.xs, b3, out=out[j]), out=out[j])
            elif c == 2:
                np.multiply(np.negative(ds, out=out[j]), b2, out=out[j])
            else:
                out[j] = self.xs if c == 3 else 1.0
        return out


# From _logistic_start, the 4-parameter fit is within 1% of its optimum's squared error after
# 60 evaluations on data where the 5-parameter one bends (random, U-shaped, contrary trends:
# a third of the time of 200 from a generic start, which also stopped in worse local optima).
_MAX_EVALUATIONS_4 = 60
_START_SLOPES = np.array([0.5, 1.0, 2.0, 4.0, 8.0])  # b2 on standardised x


def _logistic_start(xs: np.ndarray, y: np.ndarray) -> list[float]:
    """A start for the 4-parameter logistic (b4 = 0): for each b2 of a small grid and b3 at
    quantiles of x, b1 and b5 are a linear least-squares fit; the best of the 25 (vectorised)."""
    b2, b3 = (
        g.ravel() for g in np.meshgrid(_START_SLOPES, np.quantile(xs, [0.1, 0.3, 0.5, 0.7, 0.9]))
    )
    s = 0.5 - 1.0 / (1.0 + np.exp(np.clip(b2[:, None] * (xs - b3[:, None]), -500, 500)))
    sc, yc = s - s.mean(axis=1, keepdims=True), y - y.mean()
    b1 = sc @ yc / np.maximum(_rowdot(sc, sc), 1e-300)
    k = int(np.argmin(_rowdot(yc - b1[:, None] * sc, yc - b1[:, None] * sc)))
    return [b1[k], b2[k], b3[k], 0.0, y.mean() - b1[k] * s[k].mean()]


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def is_monotonic(p, low: float, high: float) -> bool:
    """Whether :func:`vqeg_logistic` with parameters ``p`` is monotonic on [low, high].

    Its slope b1 b2 s(1 - s) + b4 (s the logistic) moves monotonically on either side of b3,
    where s(1 - s) peaks, so its extremes on the interval lie at the ends and at b3: the curve
    is monotonic when the slope has one sign at those three points (exact, no grid)."""
    b1, b2, b3, b4, _ = p
    at = np.array([low, high, np.clip(b3, low, high)])
    s = 1.0 / (1.0 + np.exp(np.clip(b2 * (at - b3), -500, 500)))
    slope = b1 * b2 * s * (1.0 - s) + b4
    return bool(np.all(slope >= 0) or np.all(slope <= 0))


def logistic_d(p) -> int:
    """The parameters a :func:`fit_logistic` mapping used (P.1401's d): 5, 4 (b4 = 0) or 2
    (b1 = 0, a straight line)."""
    return 2 if p[0] == 0 else 4 if p[3] == 0 else 5


def _candidates(xs: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Monotonic mappings on standardised x, each with its note: the 5-parameter logistic when
    it is monotonic over the data, else the 4-parameter one (b4 = 0: monotonic everywhere);
    and always the straight line, so that the mapping is never worse than a line."""
    slope, intercept = np.polyfit(xs, y, 1)
    out = [(np.array([0.0, 1.0, 0.0, slope, intercept]), "")]
    q = _least_squares(xs, y, [np.ptp(y), 1.0, 0.0, 0.0, np.mean(y)], [0, 1, 2, 3, 4])
    if is_monotonic(q, xs.min(), xs.max()):
        return [*out, (q, "")]
    out[0] = (out[0][0], f"{NOT_MONOTONIC}: mapped by a {STRAIGHT_LINE} instead")
    try:
        q4 = _least_squares(xs, y, _logistic_start(xs, y), [0, 1, 2, 4], _MAX_EVALUATIONS_4)
    except (ValueError, np.linalg.LinAlgError):
        return out
    return [*out, (q4, f"{NOT_MONOTONIC}: mapped by a {LOGISTIC_4} instead")]


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Least-squares monotonic mapping of x onto y by :func:`vqeg_logistic` (ITU-T P.1401).

    The VQEG 5-parameter logistic's linear term b4 x can bend it back within the data (a dip
    or a rise at one end), which P.1401 does not allow. Where the 5-parameter fit is monotonic
    over [min x, max x] it is kept; otherwise the fit with b4 = 0 (a 4-parameter logistic,
    monotonic everywhere) replaces it. A straight line (b1 = 0) is fitted too and maps instead
    whenever its squared error is smaller. :func:`logistic_d` gives the parameters used.

    Returns
    -------
    (numpy.ndarray or None, str)
        ``b1..b5`` of :func:`vqeg_logistic` (None when no logistic was fitted: fewer than 6
        points, constant values, or the optimiser failing) and a note ("" for the 5-parameter
        logistic, else which mapping replaced it and why).
    """
    if len(x) < 6:
        return None, "fewer than 6 points: 5-parameter logistic not fitted"
    sx = np.std(x)
    if sx == 0 or np.std(y) == 0:
        return None, "constant values: logistic not fitted"
    # Fitted on standardised x, where the five parameters have comparable scales, with the
    # analytic Jacobian: a few dozen evaluations where raw x took hundreds (docs/benchmarks.md).
    mx = np.mean(x)
    xs = (x - mx) / sx
    try:
        found = _candidates(xs, y)
    except (ValueError, np.linalg.LinAlgError) as exc:
        # A sentence first; the optimiser's own words stay after it for whoever debugs the fit.
        return None, f"{FIT_FAILED}: the optimiser stopped on an error ({exc})"
    with np.errstate(all="ignore"):
        sse = [np.sum((vqeg_logistic(xs, *q) - y) ** 2) for q, _ in found]
    # The line is first: a logistic must do strictly better to be chosen (ties: fewer parameters).
    q, note = found[int(np.nanargmin(np.where(np.isfinite(sse), sse, np.nan)))]
    if len(found) > 1 and q is found[0][0] and not note:
        note = f"the logistic fitted no better than a {STRAIGHT_LINE}, which maps instead"
    # Back to raw x: b2 (xs - b3) = (b2 / sx)(x - mx - sx b3) and b4 xs + b5 = (b4 / sx) x + ...
    p = np.array([q[0], q[1] / sx, mx + sx * q[2], q[3] / sx, q[4] - q[3] * mx / sx])
    if not np.all(np.isfinite(p)):
        return None, f"{FIT_FAILED}: its parameters came out infinite or NaN"
    return p, note
