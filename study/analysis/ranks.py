"""Rank correlations with p-values that hold on a handful of points: exact permutation up to nine,
seeded random orderings up to fifty, the asymptotic approximations only beyond (the metric
panel's per-method rows, MOS against JOD)."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats

# Rank correlations over few points (a dataset's methods: 5 to 12) get permutation p-values:
# every ordering of the MOS values up to EXACT_MAX_N points (9! = 362,880), PERMUTATIONS random
# orderings (seeded) up to PERMUTATION_MAX_N, and the asymptotic t (SROCC) and normal (KROCC)
# approximations only beyond, where they hold.
EXACT_MAX_N = 9
PERMUTATION_MAX_N = 50
PERMUTATIONS = 9_999


@functools.lru_cache(maxsize=2)
def _all_orderings(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every permutation of range(n), a row each (n! rows), built by inserting 0..n-1 in turn;
    and for each, the flat index (a n + b) of its pairs (a, b) = (order[i], order[j]), i < j."""
    perms = np.zeros((1, 0), dtype=np.int8)
    for k in range(n):
        m = len(perms)
        grown = np.empty((m * (k + 1), k + 1), dtype=np.int8)
        for pos in range(k + 1):
            block = grown[pos * m : (pos + 1) * m]
            block[:, :pos], block[:, pos], block[:, pos + 1 :] = perms[:, :pos], k, perms[:, pos:]
        perms = grown
    return perms, _pair_index(perms)


# A report judges each dataset's methods and the pooled ones on every refresh of a live page:
# the same few sizes, whose orderings are drawn once (9,999 x 30 points: 9 MB, 25 ms; at most
# four sizes kept, 100 MB at the 50 points of the largest).
@functools.lru_cache(maxsize=4)
def _random_orderings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PERMUTATIONS random orderings of range(n) (seeded), and their pairs' flat indices as
    :func:`_all_orderings` gives them; read-only, shared by every caller."""
    base = np.tile(np.arange(n, dtype=np.int8), (PERMUTATIONS, 1))
    orders = np.random.default_rng(seed).permuted(base, axis=1)
    pairs = _pair_index(orders)
    orders.flags.writeable = pairs.flags.writeable = False
    return orders, pairs


def _pair_index(orders: np.ndarray) -> np.ndarray:
    n = orders.shape[1]
    i, j = np.triu_indices(n, 1)
    return orders[:, i].astype(np.int16) * n + orders[:, j]


class RankNull:
    """The permutation distribution of SROCC and KROCC against fixed MOS values ``y``.

    Built once per set of points and shared by every metric judged on them, so that a
    metric's statistics under all orderings are a matrix product each. ``method`` names how
    the p-values are found: ``exact permutation (N! orderings)`` up to :data:`EXACT_MAX_N`
    points, ``permutation (9,999 random orderings, seeded)`` up to :data:`PERMUTATION_MAX_N`
    (p = (hits + 1) / (9,999 + 1)), else ``asymptotic`` (scipy's t and normal approximations).
    Ties stay as they are (average ranks; tau-b's pairs).
    """

    def __init__(self, y: np.ndarray, seed: int = 0):
        n = len(y)
        self.exact = n <= EXACT_MAX_N
        if not 3 <= n <= PERMUTATION_MAX_N:
            self.method = "asymptotic"
            return
        if self.exact:  # the same for every set of n points: built once
            orders, pairs = _all_orderings(n)
            self.method = f"exact permutation ({math.factorial(n):,} orderings)"
        else:
            orders, pairs = _random_orderings(n, seed)
            self.method = f"permutation ({PERMUTATIONS:,} random orderings, seeded)"
        ranks = stats.rankdata(y)
        self._ranks = ranks - ranks.mean()
        self._i, self._j = np.triu_indices(n, 1)
        self._signs = np.sign(y[self._i] - y[self._j])
        # Each ordering's centred MOS ranks, and the signs of its MOS pairs (float32, exact for
        # -1, 0, 1 and their sums here, for BLAS: 9! x 36 take 52 MB, briefly).
        self._null_ranks = self._ranks[orders]
        self._null_signs = np.sign(y[:, None] - y[None, :]).astype(np.float32).ravel()[pairs]

    def _p(self, observed: float, null: np.ndarray) -> float:
        hits = np.count_nonzero(np.abs(null) >= abs(observed) - 1e-9 * max(1.0, abs(observed)))
        return hits / len(null) if self.exact else (hits + 1) / (len(null) + 1)

    def p_values(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Two-sided p of SROCC and of KROCC of ``x`` against the ``y`` the null was built on."""
        return tuple(p for _, p in rank_correlations(x, y, self))

    def _permutation_p(self, x: np.ndarray) -> tuple[float, float]:
        rx = stats.rankdata(x)
        rx -= rx.mean()
        sx = np.sign(x[self._i] - x[self._j])
        # Pearson of ranks and tau-b keep their denominators under any ordering of y (the ties
        # travel with the values), so their numerators order the orderings alike.
        spearman = self._p(rx @ self._ranks, self._null_ranks @ rx)
        kendall = self._p(sx @ self._signs, self._null_signs @ sx.astype(np.float32))
        return spearman, kendall


def rank_correlations(x: np.ndarray, y: np.ndarray, null: RankNull) -> tuple[tuple, tuple]:
    """(SROCC, p) and (KROCC tau-b, p) of x against y, p as ``null.method`` says."""
    spearman, kendall = stats.spearmanr(x, y), stats.kendalltau(x, y)
    if null.method == "asymptotic":
        p = float(spearman.pvalue), float(kendall.pvalue)
    else:
        p = null._permutation_p(x)
    return (float(spearman.statistic), p[0]), (float(kendall.statistic), p[1])
