"""Simulated votes in a report: which raters are simulated (srmos' exports say so in rater_platform),
which methods' simulated votes are placeholders, and what the manifest and figures must say."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from . import plots
from .simulate import known_profile

_TRUE = {"1", "1.0", "true", "yes", "y", "t"}


def _marked(col: pd.Series, test: Callable[[str], bool]) -> np.ndarray:
    """``test`` of each value's stripped, lower-cased text, judged once per distinct value (a
    marker column of a million votes holds a handful)."""
    hits = [x for x in col.dropna().unique() if test(str(x).strip().lower())]
    return col.isin(hits).to_numpy()


def simulated_votes(v: pd.DataFrame) -> np.ndarray:
    """Which votes come from simulated raters (a boolean per row of ``v``).

    Recognised markers: ``rater_platform`` or ``platform`` equal to "simulated" (srmos'
    exports), a truthy ``simulated`` column (True, 1, "yes"), or a non-empty ``simulated_as``
    (the output of :func:`study.analysis.simulate_votes`). A rater with one simulated vote
    counts as simulated.
    """
    mark = np.zeros(len(v), dtype=bool)
    for col in ("rater_platform", "platform"):
        if col in v.columns:
            mark |= _marked(v[col], lambda x: x == "simulated")
    if "simulated" in v.columns:
        mark |= _marked(v["simulated"], lambda x: x in _TRUE)
    if "simulated_as" in v.columns:
        mark |= _marked(v["simulated_as"], lambda x: x not in ("", "nan"))
    raters = v.loc[mark, "rater"].unique()
    return v["rater"].isin(raters).to_numpy()


def simulation(v: pd.DataFrame) -> dict:
    """What the report must say about simulated votes in ``v``.

    Returns ``simulated`` (any), ``n_raters`` (simulated raters), ``unknown`` (method -> reason
    for the methods whose simulated votes are placeholders: flagged ``simulated_unknown``, or,
    without that column, a method the simulator has no profile for), ``prefix`` (for figure
    titles) and ``notes`` (the manifest's sentences).
    """
    sim = simulated_votes(v)
    n_sim, n_all = int(v.loc[sim, "rater"].nunique()), int(v["rater"].nunique())
    if "simulated_unknown" in v.columns:
        unknown_rows = sim & _marked(v["simulated_unknown"], lambda x: x in _TRUE)
    else:
        known = {m: known_profile(m) for m in v.loc[sim, "method"].astype(str).unique()}
        unknown_rows = sim & v["method"].astype(str).map(known).eq(False).to_numpy()
    unknown = {
        str(m): f"{m} has no simulated profile (the SRGAN paper did not rate it): its simulated "
        "votes are placeholders, so no verdict"
        for m in sorted(v.loc[unknown_rows, "method"].astype(str).unique())
    }
    notes = []
    if n_sim:
        notes.append(
            f"SIMULATED: {n_sim} of {n_all} raters are simulated, not people; every table and "
            "figure of this report "
            + ("describes simulated votes." if n_sim == n_all else "mixes them with real votes.")
        )
    if unknown:
        notes.append(
            f"No verdict on {', '.join(unknown)}: simulated without a known profile, their "
            "votes are placeholders (significance.csv says so in note)."
        )
    return {
        "simulated": bool(n_sim),
        "n_raters": n_sim,
        "unknown": unknown,
        "prefix": plots.SIMULATED_PREFIX if n_sim else "",
        "notes": notes,
    }
