"""Simulated raters who vote around the SRGAN paper's published MOS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .schema import VotesError

# Ledig et al. (2017), Table 2 (x4 MOS) and Table 1 (loss ablation, Set5 / Set14).
PAPER_MOS: dict[str, dict[str, float]] = {
    "set5": {
        "nn": 1.28,
        "bicubic": 1.97,
        "srcnn": 2.57,
        "selfexsr": 2.65,
        "drcn": 3.26,
        "espcn": 2.89,
        "srresnetmse": 3.37,
        "srresnetvgg22": 3.46,
        "srganmse": 3.77,
        "srganvgg22": 3.78,
        "srganvgg54": 3.58,
        "hr": 4.32,
    },
    "set14": {
        "nn": 1.20,
        "bicubic": 1.80,
        "srcnn": 2.26,
        "selfexsr": 2.34,
        "drcn": 2.84,
        "espcn": 2.52,
        "srresnetmse": 2.98,
        "srresnetvgg22": 3.15,
        "srganmse": 3.43,
        "srganvgg22": 3.57,
        "srganvgg54": 3.72,
        "hr": 4.32,
    },
    "bsd100": {
        "nn": 1.11,
        "bicubic": 1.47,
        "srcnn": 1.87,
        "selfexsr": 1.89,
        "drcn": 2.12,
        "espcn": 2.01,
        "srresnetmse": 2.29,
        "srganvgg54": 3.56,
        "hr": 4.46,
    },
}
METHOD_ALIASES = {
    "nearest": "nn",
    "nearestneighbour": "nn",
    "nearestneighbor": "nn",
    "srresnet": "srresnetmse",
    "srgan": "srganvgg54",
    "original": "hr",
    "gt": "hr",
    "reference": "hr",
}
DATASET_ALIASES = {"b100": "bsd100", "bsds100": "bsd100", "bsd": "bsd100"}
# A method the paper did not rate gets a mid-scale MOS.
DEFAULT_MOS = 3.0
# Spread of the simulated panel, chosen so per-stimulus std is near the paper's figure 5 spread.
PROFILES = {
    "paper": {"rater_bias_sd": 0.25, "image_sd": 0.25, "noise_sd": 0.55},
    "noisy": {"rater_bias_sd": 0.5, "image_sd": 0.3, "noise_sd": 1.0},
}


def _norm(s: str) -> str:
    return "".join(ch for ch in str(s).lower() if ch.isalnum())


def paper_mos(dataset: str, method: str) -> float:
    """The paper's MOS for a dataset and method (names matched loosely), else a documented default.

    Method names are lower-cased with punctuation removed and aliased (nearest -> NN, srresnet ->
    SRResNet-MSE, srgan -> SRGAN-VGG54, original -> HR). An unknown dataset uses the mean over the
    three sets of the method's values; an unknown method gets ``DEFAULT_MOS`` (3.0).
    """
    m = _norm(method)
    m = METHOD_ALIASES.get(m, m)
    d = _norm(dataset)
    d = DATASET_ALIASES.get(d, d)
    if d in PAPER_MOS and m in PAPER_MOS[d]:
        return PAPER_MOS[d][m]
    known = [t[m] for t in PAPER_MOS.values() if m in t]
    return float(np.mean(known)) if known else DEFAULT_MOS


def expected_vote(mu: float, sd: float) -> float:
    """Mean of round(clip(N(mu, sd))) on the 1-5 scale (thresholds at 1.5, 2.5, 3.5, 4.5)."""
    cuts = stats.norm.cdf((np.array([1.5, 2.5, 3.5, 4.5]) - mu) / sd)
    probs = np.diff(np.concatenate([[0.0], cuts, [1.0]]))
    return float(np.dot(probs, np.arange(1, 6)))


def latent_for(target: float, sd: float) -> float:
    """The latent mean whose discretised votes average ``target`` (inverts :func:`expected_vote`)."""
    t = float(np.clip(target, 1.001, 4.999))
    return float(optimize.brentq(lambda m: expected_vote(m, sd) - t, -10.0, 16.0, xtol=1e-10))


def simulate_votes(
    design: pd.DataFrame,
    n_raters: int = 26,
    profile: str = "paper",
    seed: int = 0,
    bad_raters: int | Mapping[str, int] = 2,
    missing: float = 0.0,
    retest: int = 0,
    repeats: int = 0,
) -> pd.DataFrame:
    """Simulate a panel voting on every stimulus of ``design``.

    Good rater i votes on stimulus (d, j, m) :math:`\\mathrm{round}(\\mathrm{clip}(\\mu_{dm} +
    a_{dj} + b_i + \\varepsilon, 1, 5))` with image effect :math:`a \\sim N(0, s_a)`, rater bias
    :math:`b \\sim N(0, s_b)` and noise :math:`\\varepsilon \\sim N(0, s_e)`; the latent
    :math:`\\mu_{dm}` is chosen so the expected vote equals the paper's MOS (:func:`paper_mos`).
    Bad raters vote uniformly at random (``"random"``) or always the same score
    (``"straight"``, a straight-liner).

    Parameters
    ----------
    design : pandas.DataFrame
        ``dataset, image, method``, one row per stimulus.
    n_raters : int
        Panel size including bad raters (the paper had 26).
    profile : {"paper", "noisy"}
        Spreads: paper (bias 0.25, image 0.25, noise 0.55) or noisy (0.5, 0.3, 1.0).
    seed : int
        Seed of :func:`numpy.random.default_rng`; same seed, same votes.
    bad_raters : int or mapping
        An int n gives ceil(n/2) random and floor(n/2) straight-lining raters; or a mapping
        ``{"random": k, "straight": l}``.
    missing : float
        Fraction of votes dropped at random (partial designs).
    retest : int
        Stimuli each good rater votes on a second time (``kind="retest"``), the paper's pilot.
    repeats : int
        Stimuli each good rater votes on a second time as an ordinary rating (``repeat=1``).

    Returns
    -------
    pandas.DataFrame
        ``rater, dataset, image, method, score, kind, repeat, simulated_as`` ("good", "random",
        "straight"), ``paper_mos``; raters are named r01, r02, ... and the bad ones come last.
    """
    kinds = _panel(design, n_raters, profile, bad_raters, missing)
    p = PROFILES[profile]
    rng = np.random.default_rng(seed)
    stim = _stimuli(design, p, rng)
    frames = []
    for i, kind in enumerate(kinds):
        frames += _rater_votes(f"r{i + 1:02d}", kind, stim, p, rng, missing, retest, repeats)
    out = pd.concat(frames, ignore_index=True)
    out["score"] = out["score"].astype("int64")
    return out[
        [
            "rater",
            "dataset",
            "image",
            "method",
            "score",
            "kind",
            "repeat",
            "simulated_as",
            "paper_mos",
        ]
    ]


def _panel(
    design: pd.DataFrame,
    n_raters: int,
    profile: str,
    bad_raters: int | Mapping[str, int],
    missing: float,
) -> list[str]:
    """Check the arguments of :func:`simulate_votes`; the kind of each rater, bad ones last."""
    missing_cols = [c for c in ("dataset", "image", "method") if c not in design.columns]
    if missing_cols:
        raise VotesError(f"design lacks column(s) {', '.join(missing_cols)}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if isinstance(bad_raters, Mapping):
        n_random, n_straight = int(bad_raters.get("random", 0)), int(bad_raters.get("straight", 0))
    else:
        n_random, n_straight = (int(bad_raters) + 1) // 2, int(bad_raters) // 2
    n_good = n_raters - n_random - n_straight
    if n_good < 0:
        raise ValueError(f"{n_random + n_straight} bad raters exceed a panel of {n_raters}")
    if not 0.0 <= missing < 1.0:
        raise ValueError("missing must be in [0, 1)")
    return ["good"] * n_good + ["random"] * n_random + ["straight"] * n_straight


@dataclass(frozen=True)
class _Stimuli:
    """The design's distinct stimuli and what a good rater's vote on each is drawn around."""

    table: pd.DataFrame  # dataset, image, method
    paper_mos: np.ndarray
    latent: np.ndarray  # mean before rounding whose expected vote is paper_mos
    image_effect: np.ndarray  # shared by every method on the same image


def _stimuli(design: pd.DataFrame, p: dict[str, float], rng: np.random.Generator) -> _Stimuli:
    """Distinct stimuli of ``design`` with their latent means and one image effect per image."""
    stim = (
        design[["dataset", "image", "method"]].astype(str).drop_duplicates().reset_index(drop=True)
    )
    total_sd = float(np.sqrt(p["rater_bias_sd"] ** 2 + p["image_sd"] ** 2 + p["noise_sd"] ** 2))
    targets = np.array(
        [paper_mos(d, m) for d, m in zip(stim["dataset"], stim["method"], strict=True)]
    )
    # One root-finding per distinct MOS, not per stimulus.
    cache = {t: latent_for(t, total_sd) for t in np.unique(targets)}
    mu = np.array([cache[t] for t in targets])
    images = stim[["dataset", "image"]].drop_duplicates()
    img_eff = pd.Series(
        rng.normal(0, p["image_sd"], len(images)), index=pd.MultiIndex.from_frame(images)
    )
    a = img_eff.reindex(pd.MultiIndex.from_frame(stim[["dataset", "image"]])).to_numpy()
    return _Stimuli(stim, targets, mu, a)


def _rater_votes(
    name: str,
    kind: str,
    stim: _Stimuli,
    p: dict[str, float],
    rng: np.random.Generator,
    missing: float,
    retest: int,
    repeats: int,
) -> list[pd.DataFrame]:
    """One rater's votes: a rating of every stimulus (less the missing ones), then a good
    rater's retest and repeated votes.

    The random draws happen in this fixed order, so a seed gives the same votes.
    """
    n_s = len(stim.table)
    b = None
    if kind == "good":
        b = rng.normal(0, p["rater_bias_sd"])
        score = _good_votes(stim.latent + stim.image_effect, b, p["noise_sd"], rng)
    elif kind == "random":
        score = rng.integers(1, 6, n_s).astype(float)
    else:
        score = np.full(n_s, float(rng.integers(2, 5)))
    f = stim.table.assign(
        rater=name,
        score=score,
        kind="rating",
        repeat=0,
        simulated_as=kind,
        paper_mos=stim.paper_mos,
    )
    if missing > 0:
        f = f[rng.random(n_s) >= missing]
    frames = [f]
    for count, again_kind in ((retest, "retest"), (repeats, "rating")):
        if count and kind == "good":
            idx = rng.choice(n_s, size=min(count, n_s), replace=False)
            again = _good_votes(stim.latent[idx] + stim.image_effect[idx], b, p["noise_sd"], rng)
            frames.append(
                stim.table.iloc[idx].assign(
                    rater=name,
                    score=again,
                    kind=again_kind,
                    repeat=1,
                    simulated_as=kind,
                    paper_mos=stim.paper_mos[idx],
                )
            )
    return frames


def _good_votes(
    mean: np.ndarray, b: float, noise_sd: float, rng: np.random.Generator
) -> np.ndarray:
    """Votes of a good rater with bias ``b``: the latent means plus noise, rounded onto 1-5."""
    return np.clip(np.round(mean + b + rng.normal(0, noise_sd, len(mean))), 1, 5)


def paper_design(methods_bsd100: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The paper's design: 12 methods on Set5 (5 images) and Set14 (14), 9 on BSD100 (100).

    1,128 stimuli; image names are placeholders (``img000`` ...).
    """
    all12 = [
        "nn",
        "bicubic",
        "srcnn",
        "selfexsr",
        "drcn",
        "espcn",
        "srresnet-mse",
        "srresnet-vgg22",
        "srgan-mse",
        "srgan-vgg22",
        "srgan-vgg54",
        "hr",
    ]
    nine = (
        list(methods_bsd100)
        if methods_bsd100
        else [m for m in all12 if m not in ("srresnet-vgg22", "srgan-mse", "srgan-vgg22")]
    )
    rows = []
    for ds, n_img, methods in (("Set5", 5, all12), ("Set14", 14, all12), ("BSD100", 100, nine)):
        rows += [(ds, f"img{i:03d}", m) for i in range(n_img) for m in methods]
    return pd.DataFrame(rows, columns=["dataset", "image", "method"])
