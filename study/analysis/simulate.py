"""Simulated raters who vote around the SRGAN paper's published MOS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

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
    "srresnetmseauthors": "srresnetmse",  # the authors' released SRResNet-MSE outputs
    "srgan": "srganvgg54",
    "original": "hr",
    "gt": "hr",
    "reference": "hr",
}
DATASET_ALIASES = {"b100": "bsd100", "bsds100": "bsd100", "bsd": "bsd100"}
# A method the paper did not rate has no profile. Its simulated votes are placeholders drawn
# around the middle of the scale so every trial gets an answer; they carry
# ``simulated_unknown=True`` and the report gives no verdict on them.
PLACEHOLDER_MOS = 3.0
# Spread of the simulated panel, chosen so per-stimulus std is near the paper's figure 5 spread.
PROFILES = {
    "paper": {"rater_bias_sd": 0.25, "image_sd": 0.25, "noise_sd": 0.55},
    "noisy": {"rater_bias_sd": 0.5, "image_sd": 0.3, "noise_sd": 1.0},
}


def _norm(s: str) -> str:
    return "".join(ch for ch in str(s).lower() if ch.isalnum())


def paper_mos(dataset: str, method: str) -> float:
    """The paper's MOS for a dataset and method (names matched loosely); NaN for an unknown method.

    Method names are lower-cased with punctuation removed and aliased (nearest -> NN, srresnet ->
    SRResNet-MSE, srgan -> SRGAN-VGG54, original -> HR). An unknown dataset uses the mean over the
    three sets of the method's values. A method the paper did not rate has no MOS: NaN, never an
    invented value (:func:`known_profile` says which).
    """
    m = _norm(method)
    m = METHOD_ALIASES.get(m, m)
    d = _norm(dataset)
    d = DATASET_ALIASES.get(d, d)
    if d in PAPER_MOS and m in PAPER_MOS[d]:
        return PAPER_MOS[d][m]
    known = [t[m] for t in PAPER_MOS.values() if m in t]
    return float(np.mean(known)) if known else np.nan


def known_profile(method: str) -> bool:
    """Whether the simulator knows ``method`` (the paper rated it, names matched loosely)."""
    m = _norm(method)
    return any(METHOD_ALIASES.get(m, m) in t for t in PAPER_MOS.values())


def unknown_methods(design: pd.DataFrame) -> list[str]:
    """The methods of ``design`` (a ``method`` column) the simulator has no profile for, sorted.

    A caller that simulates raters (srmos' pilots) can say so before voting: their votes would
    be placeholders, not the paper's pattern.
    """
    return sorted(m for m in design["method"].astype(str).unique() if not known_profile(m))


def expected_vote(mu: float, sd: float) -> float:
    """Mean of round(clip(N(mu, sd))) on the 1-5 scale (thresholds at 1.5, 2.5, 3.5, 4.5)."""
    cuts = ndtr((np.array([1.5, 2.5, 3.5, 4.5]) - mu) / sd)
    probs = np.diff(np.concatenate([[0.0], cuts, [1.0]]))
    return float(np.dot(probs, np.arange(1, 6)))


def latent_for(target: float, sd: float) -> float:
    """The latent mean whose discretised votes average ``target`` (inverts :func:`expected_vote`)."""
    t = float(np.clip(target, 1.001, 4.999))
    from scipy import optimize  # here: the paired report imports this module for its profiles

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
    *,
    method_image_sd: float = 0.0,
    method_rater_sd: float = 0.0,
    rater_noise_spread: float = 0.0,
    unknown: str = "flag",
    scale: str = "acr",
) -> pd.DataFrame:
    """Simulate a panel voting on every stimulus of ``design``.

    Good rater i votes on stimulus (d, j, m) :math:`\\mathrm{round}(\\mathrm{clip}(\\mu_{dm} +
    a_{dj} + b_i + g_{djm} + h_{im} + s_i\\varepsilon, 1, 5))` with image effect
    :math:`a \\sim N(0, s_a)`, rater bias :math:`b \\sim N(0, s_b)`, method x image interaction
    :math:`g \\sim N(0,` ``method_image_sd``), method x rater interaction
    :math:`h \\sim N(0,` ``method_rater_sd``) (a rater's taste for a method, the same on every
    dataset), noise :math:`\\varepsilon \\sim N(0, s_e)` scaled per rater by
    :math:`s_i = \\exp(N(0,` ``rater_noise_spread``:math:`))`. The latent :math:`\\mu_{dm}` is
    chosen so the expected vote equals the paper's MOS (:func:`paper_mos`). Bad raters vote
    uniformly at random (``"random"``) or always the same score (``"straight"``).

    Parameters
    ----------
    design : pandas.DataFrame
        ``dataset, image, method``, one row per stimulus.
    n_raters : int
        Panel size including bad raters (the paper had 26).
    profile : {"paper", "noisy"}
        Spreads: paper (bias 0.25, image 0.25, noise 0.55) or noisy (0.5, 0.3, 1.0).
    seed : int
        Seed of :func:`numpy.random.default_rng`; same seed, same votes. The interaction terms
        come from a second stream of the same seed, so without them the votes are those of
        earlier versions.
    bad_raters : int or mapping
        An int n gives ceil(n/2) random and floor(n/2) straight-lining raters; or a mapping
        ``{"random": k, "straight": l}``.
    missing : float
        Fraction of (rater, stimulus) votes dropped at random: an unbalanced design.
    retest : int
        Stimuli each good rater votes on a second time (``kind="retest"``), the paper's pilot.
    repeats : int
        Stimuli each good rater votes on a second time as an ordinary rating (``repeat=1``).
    method_image_sd, method_rater_sd : float
        Spreads of the method x image and method x rater interactions (default 0: none).
    rater_noise_spread : float
        Sd of the log of each good rater's noise multiplier (default 0: equal noise).
    unknown : {"flag", "raise"}
        A method the paper did not rate has no profile. ``"flag"`` (default): its votes are
        placeholders around the middle of the scale (``PLACEHOLDER_MOS``) with
        ``simulated_unknown=True`` and ``paper_mos`` NaN, and the report gives no verdict on
        it; ``"raise"``: ValueError naming the methods.
    scale : {"acr", "dcr"}
        The protocol's scale: ``"acr"`` votes around the paper's MOS; ``"dcr"`` rates the
        impairment against the HR reference around :func:`dcr_mos` (``paper_mos`` then holds
        that DCR target).

    Returns
    -------
    pandas.DataFrame
        ``rater, dataset, image, method, score, kind, repeat, simulated_as`` ("good", "random",
        "straight"), ``paper_mos``, ``simulated_unknown``; raters are named r01, r02, ... and the
        bad ones come last.
    """
    kinds = _panel(design, n_raters, profile, bad_raters, missing)
    if unknown not in ("flag", "raise"):
        raise ValueError(f"unknown must be 'flag' or 'raise', got {unknown!r}")
    if unknown == "raise" and unknown_methods(design):
        raise ValueError(
            "no simulated profile for method(s) "
            f"{', '.join(unknown_methods(design))}: the paper did not rate them"
        )
    p = dict(PROFILES[profile], mi=method_image_sd, mr=method_rater_sd)
    rng = np.random.default_rng(seed)
    if scale not in TARGETS:
        raise ValueError(f"scale must be one of {', '.join(TARGETS)}, got {scale!r}")
    stim = _stimuli(design, p, rng, TARGETS[scale])
    taste = _interactions(stim, p, n_raters, rater_noise_spread, seed)
    frames = []
    for i, kind in enumerate(kinds):
        rater = (taste["offset"][i], p["rater_bias_sd"], taste["noise"][i])
        frames += _rater_votes(f"r{i + 1:02d}", kind, stim, rater, rng, missing, retest, repeats)
    out = pd.concat(frames, ignore_index=True)
    out["score"] = out["score"].astype("int64")
    out["simulated_unknown"] = out["paper_mos"].isna()
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
            "simulated_unknown",
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
    paper_mos: np.ndarray  # NaN for a method without a profile
    latent: np.ndarray  # mean before rounding whose expected vote is paper_mos
    image_effect: np.ndarray  # shared by every method on the same image


def _total_sd(p: Mapping[str, float]) -> float:
    """Sd of a good rater's latent vote around the method's mean (all terms but the mean)."""
    parts = (p["rater_bias_sd"], p["image_sd"], p["noise_sd"], p.get("mi", 0.0), p.get("mr", 0.0))
    return float(np.sqrt(sum(x * x for x in parts)))


def dcr_mos(dataset: str, method: str) -> float:
    """The simulated DCR profile: a method's mean impairment score (5 imperceptible ... 1 very
    annoying), read linearly off the paper's ACR MOS so that the HR reference scores 5 (it is
    the reference) and an ACR MOS of 1 scores 1: :math:`1 + 4 (MOS - 1) / (MOS_{HR} - 1)`.
    An assumption for pilots, not a published DCR study; NaN for a method the paper did not
    rate."""
    mos, hr = paper_mos(dataset, method), paper_mos(dataset, "hr")
    return float(np.clip(1 + 4 * (mos - 1) / (hr - 1), 1.0, 5.0)) if np.isfinite(mos) else np.nan


# What a simulated vote's mean follows, by the protocol's scale.
TARGETS = {"acr": paper_mos, "dcr": dcr_mos}


def _stimuli(
    design: pd.DataFrame, p: dict[str, float], rng: np.random.Generator, target=paper_mos
) -> _Stimuli:
    """Distinct stimuli of ``design`` with their latent means (``target(dataset, method)``) and
    one image effect per image."""
    stim = (
        design[["dataset", "image", "method"]].astype(str).drop_duplicates().reset_index(drop=True)
    )
    targets = np.array([target(d, m) for d, m in zip(stim["dataset"], stim["method"], strict=True)])
    # One root-finding per distinct MOS, not per stimulus; placeholders for unknown methods.
    drawn = np.where(np.isnan(targets), PLACEHOLDER_MOS, targets)
    cache = {t: latent_for(t, _total_sd(p)) for t in np.unique(drawn)}
    mu = np.array([cache[t] for t in drawn])
    images = stim[["dataset", "image"]].drop_duplicates()
    img_eff = pd.Series(
        rng.normal(0, p["image_sd"], len(images)), index=pd.MultiIndex.from_frame(images)
    )
    a = img_eff.reindex(pd.MultiIndex.from_frame(stim[["dataset", "image"]])).to_numpy()
    return _Stimuli(stim, targets, mu, a)


def _interactions(
    stim: _Stimuli, p: Mapping[str, float], n_raters: int, spread: float, seed: int
) -> dict[str, np.ndarray]:
    """Per rater: the offset of each stimulus (method x image + method x rater interactions)
    and the noise multiplier. Drawn from a second stream of ``seed`` so the first stream, and
    the votes without these terms, stay those of earlier versions."""
    rng = np.random.default_rng([seed, 1])
    n_s = len(stim.table)
    methods, m_idx = np.unique(stim.table["method"].to_numpy(), return_inverse=True)
    g = rng.normal(0, p["mi"], n_s) if p["mi"] > 0 else np.zeros(n_s)
    h = rng.normal(0, p["mr"], (n_raters, len(methods))) if p["mr"] > 0 else None
    offset = np.broadcast_to(g, (n_raters, n_s)) if h is None else g + h[:, m_idx]
    noise = np.exp(rng.normal(0, spread, n_raters)) if spread > 0 else np.ones(n_raters)
    return {"offset": offset, "noise": noise * p["noise_sd"]}


def _rater_votes(
    name: str,
    kind: str,
    stim: _Stimuli,
    rater: tuple[np.ndarray, float, float],
    rng: np.random.Generator,
    missing: float,
    retest: int,
    repeats: int,
) -> list[pd.DataFrame]:
    """One rater's votes: a rating of every stimulus (less the missing ones), then a good
    rater's retest and repeated votes. ``rater`` is (offset per stimulus, bias sd, noise sd).

    The random draws happen in this fixed order, so a seed gives the same votes.
    """
    n_s = len(stim.table)
    offset, bias_sd, noise_sd = rater
    mean = stim.latent + stim.image_effect + offset
    b = None
    if kind == "good":
        b = rng.normal(0, bias_sd)
        score = _good_votes(mean, b, noise_sd, rng)
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
            again = _good_votes(mean[idx], b, noise_sd, rng)
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
