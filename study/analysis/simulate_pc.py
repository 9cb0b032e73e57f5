r"""Simulated paired comparisons: Thurstone Case V observers with method x image and method x
rater interactions, for calibration checks of :mod:`.jod` and for simulated pilot raters.

The observer model, in JOD (1 JOD = 75% preference, :data:`.scaling.SIGMA`): rater r compares
methods a and b on image k and prefers a with probability
:math:`\Phi((\theta_{rka} - \theta_{rkb})/\sigma)`, where
:math:`\theta_{rkm} = q_m + u_{km} + v_{rm}`: the method's quality :math:`q_m`, how much image k
favours it :math:`u_{km} \sim N(0, s_{image}^2)` (one method wins on texture, another on faces)
and how much rater r favours it :math:`v_{rm} \sim N(0, s_{rater}^2)`. With every :math:`q_m`
equal this is the null a test generalising over raters *and* images must hold at its nominal
level (MOS_PRACTICE.md, "Generalising over raters and images").

Two entry points: :func:`simulate_comparisons` (a whole seeded study, long format, for tests
and benches; :func:`simulate_arrays` is the same without pandas) and :func:`simulated_choices`
(answers to given pairs, each drawn from a hash of its keys, so a web session answering one
trial at a time gets the same panel as a batch; qualities from the SRGAN paper's MOS, and an
unknown method simulated as no different from any other, and flagged).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtr

from .jod_bootstrap import pair_tests
from .scaling import SIGMA
from .simulate import DATASET_ALIASES, METHOD_ALIASES, PAPER_MOS, PROFILES, _norm

COLUMNS = ["rater", "dataset", "image", "method_a", "method_b", "choice"]
# Assumed (not measured) interaction spreads of a simulated pilot, JOD: enough that a pilot's
# report shows image-to-image disagreement, small beside the paper's method differences.
PILOT_IMAGE_SD = 0.5
PILOT_RATER_SD = 0.25
UNKNOWN = "unknown method: no preference (coin flip)"
THURSTONE = "thurstone"


def simulate_arrays(
    quality: Sequence[float],
    n_raters: int,
    n_images: int,
    per_rater: int | None = None,
    image_sd: float = 0.0,
    rater_sd: float = 0.0,
    rng: np.random.Generator | int = 0,
) -> dict[str, np.ndarray]:
    """One simulated study as integer arrays, one entry per comparison (no pandas: fast).

    ``per_rater=None`` is the full design (every rater judges every pair of every image once);
    an int gives that many comparisons per rater, each on a uniformly drawn image and pair.

    Returns
    -------
    dict
        ``rater, image, a, b`` (indices; a is shown on the left) and ``a_won`` (bool).
    """
    rng = np.random.default_rng(rng)
    q = np.asarray(quality, dtype=float)
    m = len(q)
    ia, ib = np.triu_indices(m, 1)
    if per_rater is None:
        r, k, p = (x.ravel() for x in np.meshgrid(*map(np.arange, (n_raters, n_images, len(ia)))))
    else:
        r = np.repeat(np.arange(n_raters), per_rater)
        k = rng.integers(0, n_images, len(r))
        p = rng.integers(0, len(ia), len(r))
    swap = rng.random(len(r)) < 0.5  # which side each method is shown on
    a, b = np.where(swap, ib[p], ia[p]), np.where(swap, ia[p], ib[p])
    u = rng.normal(0.0, image_sd, (n_images, m)) if image_sd else np.zeros((n_images, m))
    v = rng.normal(0.0, rater_sd, (n_raters, m)) if rater_sd else np.zeros((n_raters, m))
    theta = q[None, :] + u[k] + v[r]  # per comparison, every method's latent quality
    rows = np.arange(len(r))
    d = theta[rows, a] - theta[rows, b]
    return {"rater": r, "image": k, "a": a, "b": b, "a_won": rng.random(len(r)) < ndtr(d / SIGMA)}


def simulate_comparisons(
    quality: Mapping[str, float] | Sequence[str],
    n_raters: int = 20,
    n_images: int = 40,
    per_rater: int | None = None,
    image_sd: float = 0.0,
    rater_sd: float = 0.0,
    seed: int = 0,
    dataset: str = "ds",
) -> pd.DataFrame:
    """A seeded simulated paired-comparison study in the long format of :mod:`.pairwise`.

    Parameters
    ----------
    quality : mapping or sequence
        Method name -> true JOD; a sequence of names makes every method equal (a null).
    n_raters, n_images, per_rater
        Panel, images (``i000``, ...) and comparisons per rater (None: the full design).
    image_sd, rater_sd : float
        Spread (JOD) of the method x image and method x rater interactions.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    pandas.DataFrame
        ``rater, dataset, image, method_a, method_b, choice`` (the chosen method's name) and
        ``rater_platform`` ("simulated", as srmos exports label simulated sessions).
    """
    if not isinstance(quality, Mapping):
        quality = dict.fromkeys(quality, 0.0)
    names = np.array([str(m) for m in quality])
    s = simulate_arrays(
        list(quality.values()), n_raters, n_images, per_rater, image_sd, rater_sd, seed
    )
    a, b = names[s["a"]], names[s["b"]]
    return pd.DataFrame(
        {
            "rater": np.char.add("s", np.char.zfill(s["rater"].astype(str), 2)),
            "dataset": dataset,
            "image": np.char.add("i", np.char.zfill(s["image"].astype(str), 3)),
            "method_a": a,
            "method_b": b,
            "choice": np.where(s["a_won"], a, b),
            "rater_platform": "simulated",
        }
    )


def count_tensors(s: Mapping[str, np.ndarray], n_raters: int, n_images: int, n_methods: int):
    """Per-rater and per-image count matrices (``c[u, i, j]``: i beat j) of
    :func:`simulate_arrays` output, as :func:`.jod_bootstrap.pair_tests` takes them."""
    win = np.where(s["a_won"], s["a"], s["b"])
    lose = np.where(s["a_won"], s["b"], s["a"])
    per_rater = np.zeros((n_raters, n_methods, n_methods))
    per_image = np.zeros((n_images, n_methods, n_methods))
    np.add.at(per_rater, (s["rater"], win, lose), 1)
    np.add.at(per_image, (s["image"], win, lose), 1)
    return per_rater, per_image


def rejection_rates(
    quality: Sequence[float],
    n_raters: int,
    n_images: int,
    per_rater: int | None = None,
    image_sd: float = 0.0,
    rater_sd: float = 0.0,
    reps: int = 200,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """How often :func:`.jod.jod_differences` calls pairs different on simulated studies.

    With equal ``quality`` this is the false-positive rate (near ``alpha`` for a calibrated
    test), otherwise the power. Each replicate is a fresh study (:func:`simulate_arrays`, seeded
    by ``[seed, replicate]``) tested with ``n_boot`` resamples of each kind.

    Returns
    -------
    dict
        ``rate`` (share of pair tests with p < alpha), ``pairs`` (that share per pair, pairs in
        :func:`numpy.triu_indices` order), ``any_holm`` (share of replicates with a pair
        significant after Holm: the family-wise rate), ``rate_raters_only`` (p from the raters'
        resamples alone, normal reference: the test before intervals covered images) and
        ``reps``.
    """
    m = len(quality)
    below, holm_any, raters_only = [], [], []
    for rep in range(reps):
        rng = np.random.default_rng([seed, rep])
        s = simulate_arrays(quality, n_raters, n_images, per_rater, image_sd, rater_sd, rng)
        t = pair_tests(*count_tensors(s, n_raters, n_images, m), n_boot=n_boot, seed=rep)
        below.append(t["p"] < alpha)
        holm_any.append((t["p_holm"] < alpha).any())
        with np.errstate(divide="ignore", invalid="ignore"):
            raters_only.append(2 * stats.norm.sf(np.abs(t["diff"]) / t["se_raters"]) < alpha)
    below = np.array(below)
    return {
        "rate": float(below.mean()),
        "pairs": below.mean(axis=0),
        "any_holm": float(np.mean(holm_any)),
        "rate_raters_only": float(np.mean(raters_only)),
        "reps": reps,
    }


def paper_quality(dataset: str, method: str, profile: str = "paper") -> float | None:
    """A method's JOD from the SRGAN paper's MOS, or None when the paper did not rate it.

    An ACR rater of ``profile`` perceives a stimulus at its MOS plus noise of sd s (0.55 for
    "paper"); comparing two such percepts is Thurstone Case V with
    :math:`q = \\mathrm{MOS} \\cdot \\sigma / (s\\sqrt2)` JOD (as ``bench/bench_pairs.py``).
    Names match as :func:`.simulate.paper_mos` matches them; an unknown dataset takes the
    method's mean over the paper's three. No default for an unknown method: inventing one
    would show a difference nobody measured.
    """
    m = _norm(method)
    m = METHOD_ALIASES.get(m, m)
    d = _norm(dataset)
    d = DATASET_ALIASES.get(d, d)
    known = [t[m] for t in PAPER_MOS.values() if m in t]
    if not known:
        return None
    mos = PAPER_MOS[d][m] if d in PAPER_MOS and m in PAPER_MOS[d] else float(np.mean(known))
    return float(mos * SIGMA / (PROFILES[profile]["noise_sd"] * np.sqrt(2.0)))


def _normal(seed: int, *keys: object) -> float:
    """A standard normal draw that depends only on ``seed`` and ``keys`` (stable across runs)."""
    h = zlib.crc32("\x1f".join(map(str, keys)).encode())
    return float(np.random.default_rng([seed, h]).standard_normal())


def simulated_choices(
    pairs: pd.DataFrame,
    seed: int = 0,
    profile: str = "paper",
    image_sd: float = PILOT_IMAGE_SD,
    rater_sd: float = PILOT_RATER_SD,
    quality: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Simulated raters' answers to given pairs: Thurstone observers with latent qualities.

    Each row's answer depends only on its keys and ``seed``: the interactions on
    ``(dataset, image, method)`` and ``(rater, method)``, the draw on the rater, image, the
    unordered pair and ``draw`` (a retest passes another draw). So answering a session one trial
    at a time, as an active design needs, gives the answers a batch would, and the side a method
    is shown on does not matter.

    Parameters
    ----------
    pairs : pandas.DataFrame
        ``rater, dataset, image, method_a, method_b`` and optionally ``draw`` (int, default 0).
    seed, profile
        The panel's seed; the ACR profile whose noise converts MOS to JOD (:func:`paper_quality`).
    image_sd, rater_sd : float
        Method x image and method x rater interaction spreads (JOD).
    quality : mapping, optional
        Method -> JOD, instead of the paper's MOS; methods missing from it are unknown.

    Returns
    -------
    pandas.DataFrame
        ``pairs``' columns and ``choice`` (the chosen method's name), ``p_a`` (the probability
        that method_a was chosen), ``simulated_as`` ("thurstone", or ``UNKNOWN`` when a method has
        no known quality: then neither is preferred, p_a = 0.5) and ``rater_platform``.
    """
    rows = pairs.reset_index(drop=True)
    draws = rows["draw"] if "draw" in rows.columns else pd.Series(0, index=rows.index)
    p_a, how = np.empty(len(rows)), []
    for i, r in enumerate(rows.itertuples(index=False)):
        side = []
        for m in (r.method_a, r.method_b):
            q = quality.get(str(m)) if quality is not None else None
            if quality is None:
                q = paper_quality(r.dataset, m, profile)
            u = _normal(seed, "image", r.dataset, r.image, m) * image_sd
            side.append(
                None if q is None else q + u + _normal(seed, "rater", r.rater, m) * rater_sd
            )
        known = None not in side
        p_a[i] = stats.norm.cdf((side[0] - side[1]) / SIGMA) if known else 0.5
        how.append(THURSTONE if known else UNKNOWN)
    # One uniform per (rater, image, unordered pair, draw): the side shown does not matter.
    ab = zip(rows["method_a"], rows["method_b"], strict=True)
    pair = [tuple(sorted((str(a), str(b)))) for a, b in ab]
    keys = zip(rows["rater"], rows["dataset"], rows["image"], pair, draws, strict=True)
    u = ndtr([_normal(seed, "vote", r, d, k, *p, w) for r, d, k, p, w in keys])
    a_first = rows["method_a"].astype(str).to_numpy() == np.array([p[0] for p in pair])
    first_won = u < np.where(a_first, p_a, 1 - p_a)  # P(the first in name order is chosen)
    a_won = first_won == a_first
    return rows.assign(
        choice=np.where(a_won, rows["method_a"], rows["method_b"]),
        p_a=p_a,
        simulated_as=how,
        rater_platform="simulated",
    )
