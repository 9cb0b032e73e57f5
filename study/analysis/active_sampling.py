r"""Which pairs to compare next: the full design, random pairs, and active sampling (ASAP-style).

Active sampling keeps, for every image, a Gaussian posterior over the methods' JOD scores (mean
vector and full covariance; prior :math:`N(0, s_0^2 I)`) under the Thurstone Case V model of
:mod:`.jod`: a wins when :math:`q_a - q_b + \varepsilon > 0`, :math:`\varepsilon \sim
N(0, \sigma^2)`, :math:`\sigma = 1.4826` (1 JOD = 75%). Each vote updates the posterior once by
moment matching (assumed-density filtering, TrueSkill's online rule with the covariance kept):
with :math:`u = e_{win} - e_{lose}`, :math:`c^2 = \sigma^2 + u^T\Sigma u`,
:math:`t = u^T\mu / c`, :math:`V = \phi(t)/\Phi(t)`, :math:`W = V(V + t)`:
:math:`\mu \mathrel{+}= \Sigma u\, V/c` and :math:`\Sigma \mathrel{-}= \Sigma u u^T \Sigma\, W/c^2`.
ASAP-approx keeps only the two marginals, so comparing HR with SRGAN would also shrink SRGAN's
uncertainty against every other method; the covariance keeps that information on the difference.

The next pair maximises the expected information gain: the outcome-weighted KL divergence from
the current posterior to the updated one, as ASAP, here exact for the Gaussian and in closed
form. With :math:`m = \mu_a - \mu_b`, :math:`s = \mathrm{Var}(q_a - q_b)`,
:math:`c^2 = \sigma^2 + s`, :math:`t = m/c`, :math:`r = s/c^2`, the divergence when a wins is
:math:`\tfrac12[-r V t - \ln(1 - r W)]` and the gain
:math:`\Phi(t)\,KL(t) + \Phi(-t)\,KL(-t)` (b winning: t -> -t). Batches take the top gains
(greedy) or, as ASAP's batch mode, the maximum spanning tree of one image's gains.

Everything is reproducible from the vote log (replayed in the order given) and a seed: ties and
the left/right order of a proposed pair are drawn from ``default_rng([seed, n_votes])``.

References
----------
Mikhailiuk, Wilmot, Perez-Ortiz, Yue & Mantiuk (2020), "Active sampling for pairwise comparisons
via approximate message passing and information gain maximization", ICPR; its code, gfxdisp/asap
(ASAP-approx/KLD_mat_approx.m, ASAP_approx.m). Herbrich, Minka & Graepel (2006), "TrueSkill";
Minka (2001), "A family of algorithms for approximate Bayesian inference", PhD thesis, MIT
(assumed-density filtering).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.special import log_ndtr

from .pairwise import comparisons
from .scaling import SIGMA
from .schema import VotesError

# Prior sd of a score, JOD. ASAP-approx's (variance 0.5 in units of the comparison noise) is
# 1.05 JOD; SR methods span ~6 JOD. In bench/bench_pairs.py (20 runs) reaching RMSE 0.2 took 805
# comparisons at 1.05 (the shrunk ends were under-sampled), 603 at 2 and 567 at 3.
PRIOR_SD = 2.0
MODES = ("greedy", "mst")
_LOG_PHI0 = -0.5 * math.log(2 * math.pi)


@dataclass
class PairState:
    """The online posterior of every image, the pairs' cached gains and who judged what.

    ``mean`` has one row per image (``images``: (dataset, image)) and one column per method,
    ``cov`` one methods x methods covariance per image; ``gain`` one row per image and one column
    per pair ``(pair_a[p], pair_b[p])``.
    Plain arrays and dicts: the state pickles, or is rebuilt from the votes.
    """

    methods: tuple[str, ...]
    images: tuple[tuple[str, str], ...]
    mean: np.ndarray
    cov: np.ndarray
    noise_sd: float = SIGMA
    n_votes: int = 0
    judged: dict[str, set[int]] = field(default_factory=dict)  # rater -> image * P + pair
    stale: set[int] = field(default_factory=set)  # images whose gains await a refresh

    def __post_init__(self):
        self.pair_a, self.pair_b = np.triu_indices(len(self.methods), 1)
        self.pair_of = np.full((len(self.methods),) * 2, -1)
        self.pair_of[self.pair_a, self.pair_b] = np.arange(len(self.pair_a))
        self.pair_of[self.pair_b, self.pair_a] = np.arange(len(self.pair_a))
        self.method_index = {m: k for k, m in enumerate(self.methods)}
        self.image_index = {key: k for k, key in enumerate(self.images)}
        self.gain = np.zeros((len(self.images), len(self.pair_a)))
        self.stale = set(range(len(self.images)))


def _image_keys(images) -> list[tuple[str, str]]:
    if isinstance(images, pd.DataFrame):
        images = images[["dataset", "image"]].itertuples(index=False, name=None)
    return sorted({(str(d), str(i)) for d, i in images})


def new_state(images, methods, prior_sd: float = PRIOR_SD, noise_sd: float = SIGMA) -> PairState:
    """An empty state: every image's scores N(0, ``prior_sd``^2) JOD^2, no votes.

    ``images`` is a DataFrame with ``dataset, image`` columns or (dataset, image) tuples;
    ``methods`` the method names (2 or more) compared on every image.
    """
    methods = tuple(sorted({str(m) for m in methods}))
    keys = tuple(_image_keys(images))
    if len(methods) < 2 or not keys:
        raise VotesError("active sampling needs at least one image and two methods")
    cov = np.tile(np.eye(len(methods)) * prior_sd**2, (len(keys), 1, 1))
    return PairState(methods, keys, np.zeros((len(keys), len(methods))), cov, noise_sd)


def update(state: PairState, rater, dataset, image, method_a, method_b, choice) -> PairState:
    """Add one vote (the long format's fields; ``choice`` a method name or "a"/"b") in place.

    Moment-matched online update of the two methods' marginals on that image (TrueSkill's rule
    with comparison noise ``noise_sd``); the image's gains are refreshed lazily.
    """
    key = (str(dataset), str(image))
    a, b, choice = str(method_a), str(method_b), str(choice).strip()
    if key not in state.image_index or a not in state.method_index or b not in state.method_index:
        raise VotesError(f"vote on {key} {a!r} vs {b!r} is outside the state's images or methods")
    if a == b or choice not in (a, b, "a", "b", "A", "B"):
        raise VotesError(f"vote on {key}: bad pair {a!r}, {b!r} or choice {choice!r}")
    won_a = choice == a or (choice.lower() == "a" and choice != b)
    k, win, lose = state.image_index[key], state.method_index[a], state.method_index[b]
    if not won_a:
        win, lose = lose, win
    mu, cov = state.mean[k], state.cov[k]
    su = cov[:, win] - cov[:, lose]  # Sigma u, u = e_win - e_lose
    c2 = state.noise_sd**2 + su[win] - su[lose]
    c = math.sqrt(c2)
    t = (mu[win] - mu[lose]) / c
    v = math.exp(_LOG_PHI0 - 0.5 * t * t - float(log_ndtr(t)))
    mu += su * (v / c)
    cov -= np.outer(su, su) * (v * (v + t) / c2)
    flat = k * len(state.pair_a) + state.pair_of[win, lose]
    state.judged.setdefault(str(rater), set()).add(int(flat))
    state.stale.add(k)
    state.n_votes += 1
    return state


def expected_information_gain(mean_diff, var_diff, noise_sd: float = SIGMA) -> np.ndarray:
    """Expected KL divergence from the posterior to its update after comparing a and b.

    Closed form for a Gaussian posterior and one probit comparison; it depends only on the
    posterior mean and variance of the difference :math:`q_a - q_b` (vectorised over pairs). See
    the module docstring for the formula.
    """
    c2 = noise_sd**2 + np.asarray(var_diff, dtype=float)
    t = np.asarray(mean_diff, dtype=float) / np.sqrt(c2)
    r = var_diff / c2
    gain = np.zeros_like(t)
    for s in (1.0, -1.0):  # a wins, b wins
        log_p = log_ndtr(s * t)
        v = np.exp(_LOG_PHI0 - 0.5 * t * t - log_p)
        gain += np.exp(log_p) * 0.5 * (-r * v * s * t - np.log1p(-r * v * (v + s * t)))
    return gain


def _refresh(state: PairState) -> None:
    if state.stale:
        rows = np.fromiter(sorted(state.stale), dtype=int)
        a, b = state.pair_a, state.pair_b
        mu, cov = state.mean[rows], state.cov[rows]
        var_diff = cov[:, a, a] + cov[:, b, b] - 2 * cov[:, a, b]
        state.gain[rows] = expected_information_gain(mu[:, a] - mu[:, b], var_diff, state.noise_sd)
        state.stale.clear()


def state_from_votes(
    votes: pd.DataFrame,
    images=None,
    methods=None,
    prior_sd: float = PRIOR_SD,
    noise_sd: float = SIGMA,
    kinds: tuple[str, ...] = ("rating",),
) -> PairState:
    """The state after replaying ``votes`` (comparison long format) in their row order.

    ``images`` and ``methods`` add to those the votes name (an image not yet compared can be
    proposed only when listed). Replaying the same log gives the same state, bit for bit.
    """
    v = comparisons(votes, kinds)
    keys = set(_image_keys(v)) | set(_image_keys(images) if images is not None else ())
    names = set(v["method_a"]) | set(v["method_b"]) | {str(m) for m in methods or ()}
    state = new_state(keys, names, prior_sd, noise_sd)
    cols = ["rater", "dataset", "image", "method_a", "method_b", "winner"]
    for row in v[cols].itertuples(index=False, name=None):
        update(state, *row)
    return state


def _candidates(state: PairState, rater, images) -> tuple[np.ndarray, np.ndarray]:
    """Flat gains with unwanted images at -inf, and a mask of pairs the rater judged."""
    gain = state.gain.copy()
    if images is not None:
        keep = np.zeros(len(state.images), dtype=bool)
        for key in _image_keys(images):
            if key not in state.image_index:
                raise VotesError(f"image {key} is not in the state")
            keep[state.image_index[key]] = True
        gain[~keep] = -np.inf
    seen = np.zeros(gain.size, dtype=bool)
    done = state.judged.get(str(rater), ()) if rater is not None else ()
    if done:
        seen[np.fromiter(done, dtype=int)] = True
    return gain.ravel(), seen


def _greedy(gain, seen, n, rng) -> np.ndarray:
    # Unseen pairs first, then (only if too few remain) the rater's repeats; ties at random.
    order = np.lexsort((rng.random(gain.size), -gain, seen))
    return order[np.isfinite(gain[order])][:n]


def _mst(state: PairState, gain, seen, n, rng) -> np.ndarray:
    """ASAP's batch: per image, the maximum spanning tree of its gains, best images first."""
    p = len(state.pair_a)
    g = np.where(seen, 0.0, gain).reshape(len(state.images), p)
    out: list[int] = []
    for k in np.lexsort((rng.random(len(g)), -g.max(axis=1))):
        if len(out) >= n or not np.isfinite(g[k]).all() or g[k].max() <= 0:
            break
        w = np.zeros((len(state.methods),) * 2)
        w[state.pair_a, state.pair_b] = 1.0 / np.where(g[k] > 0, g[k], np.inf)  # 0: no edge
        tree = minimum_spanning_tree(w).tocoo()  # weight 1/gain: the most informative tree
        edges = state.pair_of[tree.row, tree.col]
        out.extend(k * p + edges[np.argsort(-g[k, edges], kind="stable")])
    if len(out) < n:  # too few unseen pairs: fill greedily
        rest = _greedy(np.where(np.isin(np.arange(gain.size), out), -np.inf, gain), seen, n, rng)
        out.extend(rest[: n - len(out)])
    return np.asarray(out[:n], dtype=int)


def next_pairs(
    state_or_votes,
    n: int = 1,
    seed: int = 0,
    rater: str | None = None,
    mode: str = "greedy",
    images=None,
) -> pd.DataFrame:
    """The ``n`` most informative pairs to show next (to ``rater``, who gets no repeat if avoidable).

    Parameters
    ----------
    state_or_votes : PairState or pandas.DataFrame
        A state (:func:`new_state`, :func:`state_from_votes`, kept up to date by :func:`update`)
        or a comparison vote log, replayed first.
    n : int
        How many pairs.
    seed : int
        With the number of votes so far, seeds the draw of ties and of each pair's sides.
    rater : str, optional
        Pairs this rater already judged on that image come last (only to fill ``n``).
    mode : {"greedy", "mst"}
        The ``n`` largest gains over all images, or ASAP's batch: the maximum spanning tree of the
        most promising image's gains (then the next image's), as in ASAP_approx.m.
    images : optional
        Restrict the proposals to these (DataFrame ``dataset, image`` or tuples).

    Returns
    -------
    pandas.DataFrame
        ``dataset, image, method_a, method_b`` (sides drawn at random), ``gain`` (expected
        information gain, nats) and ``repeat`` (the rater judged this pair before); best first.
        Fewer than ``n`` rows only when the allowed images hold fewer pairs.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    state = state_or_votes
    if isinstance(state_or_votes, pd.DataFrame):
        state = state_from_votes(state_or_votes)
    _refresh(state)
    rng = np.random.default_rng([seed, state.n_votes])
    gain, seen = _candidates(state, rater, images)
    pick = _greedy(gain, seen, n, rng) if mode == "greedy" else _mst(state, gain, seen, n, rng)
    return _pairs_frame(state, pick, gain[pick], seen[pick], rng)


def _pairs_frame(state: PairState, flat, gain, repeat, rng) -> pd.DataFrame:
    k, p = np.divmod(flat, len(state.pair_a))
    a, b = state.pair_a[p], state.pair_b[p]
    swap = rng.random(len(flat)) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    names = np.asarray(state.methods, dtype=object)
    keys = np.asarray(state.images, dtype=object).reshape(-1, 2)
    return pd.DataFrame(
        {
            "dataset": keys[k, 0],
            "image": keys[k, 1],
            "method_a": names[a],
            "method_b": names[b],
            "gain": gain,
            "repeat": repeat,
        }
    )


def posterior(state: PairState) -> pd.DataFrame:
    """The online estimate: ``dataset, image, method, mean, sd`` (JOD; prior mean 0)."""
    keys = np.asarray(state.images, dtype=object).reshape(-1, 2)
    m = len(state.methods)
    return pd.DataFrame(
        {
            "dataset": np.repeat(keys[:, 0], m),
            "image": np.repeat(keys[:, 1], m),
            "method": np.tile(np.asarray(state.methods, dtype=object), len(keys)),
            "mean": state.mean.ravel(),
            "sd": np.sqrt(np.diagonal(state.cov, axis1=1, axis2=2).ravel()),
        }
    )
