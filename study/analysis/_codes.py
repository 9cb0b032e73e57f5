"""Integer codes for stimuli and raters, shared by the long-form estimators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .schema import STIMULUS


@dataclass(frozen=True)
class Coded:
    """Votes as parallel arrays: ``x`` score, ``e`` stimulus code, ``s`` rater code.

    Stimuli are sorted by ``(dataset, image, method)`` and raters by name, the order in which
    sureal's dataset reader lays out its score matrix (see :func:`.sureal_io.to_sureal_dataset`).
    """

    x: np.ndarray
    e: np.ndarray
    s: np.ndarray
    stimuli: pd.DataFrame  # dataset, image, method; row i is stimulus code i
    raters: np.ndarray  # rater name of code i

    @property
    def n_stimuli(self) -> int:
        return len(self.stimuli)

    @property
    def n_raters(self) -> int:
        return len(self.raters)

    def per_stimulus(self, w: np.ndarray) -> np.ndarray:
        return np.bincount(self.e, weights=w, minlength=self.n_stimuli)

    def per_rater(self, w: np.ndarray) -> np.ndarray:
        return np.bincount(self.s, weights=w, minlength=self.n_raters)


def code(v: pd.DataFrame) -> Coded:
    """Code validated votes (any kinds; the caller filters)."""
    keys = v[list(STIMULUS)]
    stimuli = keys.drop_duplicates().sort_values(list(STIMULUS)).reset_index(drop=True)
    idx = pd.MultiIndex.from_frame(stimuli)
    e = idx.get_indexer(pd.MultiIndex.from_frame(keys))
    s, raters = pd.factorize(v["rater"], sort=True)
    raters = np.asarray(raters, dtype=object)
    stimuli = stimuli.astype(str)
    return Coded(
        x=v["score"].to_numpy(dtype="float64"),
        e=e.astype(np.int64),
        s=s.astype(np.int64),
        stimuli=stimuli,
        raters=raters,
    )
