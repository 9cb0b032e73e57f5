"""Null studies for calibration: every method with the same expected vote, with rater and image
effects, method x image and method x rater interactions and missing votes, as arrays or vote
tables (bench/bench_calibration.py, tests/test_analysis_calibration.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .simulate import PROFILES, _total_sd, latent_for


def null_scores(
    n_raters: int = 26,
    n_images: int = 100,
    replicates: int = 1,
    n_methods: int = 2,
    mos: float = 3.0,
    method_image_sd: float = 0.3,
    method_rater_sd: float = 0.3,
    missing: float = 0.1,
    rater_noise_spread: float = 0.0,
    profile: str = "paper",
    seed: int = 0,
) -> np.ndarray:
    """Votes of independent null studies as an array (replicates, raters, images, methods).

    Every method has the same expected vote ``mos``; votes follow :func:`simulate_votes`' model
    (rater bias, image effect, method x image and method x rater interactions, per-rater noise,
    rounded and clipped to 1-5), all drawn afresh per replicate, and each (rater, image,
    method) vote is missing (NaN) with probability ``missing``. Any difference a test finds
    between two methods is a false positive: this is what calibration checks are run on.
    """
    if not 0.0 <= missing < 1.0:
        raise ValueError("missing must be in [0, 1)")
    p = dict(PROFILES[profile], mi=method_image_sd, mr=method_rater_sd)
    mu = latent_for(mos, _total_sd(p))
    rng = np.random.default_rng(seed)
    b, r, i, m = replicates, n_raters, n_images, n_methods
    latent = (
        mu
        + rng.normal(0, p["image_sd"], (b, 1, i, 1))
        + rng.normal(0, p["rater_bias_sd"], (b, r, 1, 1))
        + rng.normal(0, method_image_sd, (b, 1, i, m))
        + rng.normal(0, method_rater_sd, (b, r, 1, m))
    )
    noise_sd = p["noise_sd"] * np.exp(rng.normal(0, rater_noise_spread, (b, r, 1, 1)))
    latent += noise_sd * rng.standard_normal((b, r, i, m))
    votes = np.clip(np.round(latent), 1, 5)
    votes[rng.random(votes.shape) < missing] = np.nan
    return votes


def null_design(
    n_raters: int = 26,
    n_images: int = 100,
    replicates: int = 1,
    n_methods: int = 2,
    **kwargs,
) -> pd.DataFrame:
    """:func:`null_scores` as a long vote table, one ``dataset`` per replicate.

    Keyword arguments are those of :func:`null_scores` (``mos, method_image_sd,
    method_rater_sd, missing, rater_noise_spread, profile, seed``). Replicates are named
    ``null000, null001, ...``, so a per-dataset analysis (significance, Holm) treats each as its
    own study; raters ``r01 ...``, images ``img000 ...``, methods ``m1, m2, ...``.

    Returns
    -------
    pandas.DataFrame
        ``rater, dataset, image, method, score, kind, repeat, simulated_as`` ("good"),
        ``paper_mos`` (the common expected vote), ``simulated_unknown`` (False).
    """
    votes = null_scores(n_raters, n_images, replicates, n_methods, **kwargs)
    b, r, i, m = np.nonzero(~np.isnan(votes))
    names = lambda codes, fmt, n: pd.Categorical.from_codes(codes, [fmt(k) for k in range(n)])  # noqa: E731
    return pd.DataFrame(
        {
            "rater": names(r, lambda k: f"r{k + 1:02d}", votes.shape[1]),
            "dataset": names(b, lambda k: f"null{k:03d}", votes.shape[0]),
            "image": names(i, lambda k: f"img{k:03d}", votes.shape[2]),
            "method": names(m, lambda k: f"m{k + 1}", votes.shape[3]),
            "score": votes[b, r, i, m].astype("int64"),
            "kind": "rating",
            "repeat": 0,
            "simulated_as": "good",
            "paper_mos": float(kwargs.get("mos", 3.0)),
            "simulated_unknown": False,
        }
    )
