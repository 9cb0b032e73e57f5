"""The report's manifest.json: counts, estimators and their versions, flags, notes."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import scipy

from .screening import BT500_VERSION, FLAG_COLUMNS
from .session_checks import STRAIGHTLINE_MIN_VOTES, gold_votes

REPORT_VERSION = "srmos-analysis-1"


def _excluded(raters: pd.DataFrame) -> list[str]:
    """The raters ``mos_screened.csv`` leaves out: every flagged one."""
    return raters.loc[raters["flagged"], "rater"].tolist()


def _manifest(
    v: pd.DataFrame,
    r: pd.DataFrame,
    stim: pd.DataFrame,
    raters: pd.DataFrame,
    quality: pd.DataFrame,
    ci: str,
    pairing: str,
    notes: list[str],
    min_var: float = 0.1,
) -> dict:
    """The contents of ``manifest.json``: counts, estimators, flags, versions and notes.

    ``n_gold_votes`` and ``n_gold_misses`` count the gold votes of :func:`gold_votes` (a
    threshold in ``expected``, e.g. ``">=4"`` on an HR trial, or a ``gold`` kind vote), the same
    votes ``raters.csv`` judges; ``flags["gold"]`` counts the raters who missed one.
    """
    gold = gold_votes(v)
    gold = gold[gold["role"] == "gold"]
    return {
        "report": REPORT_VERSION,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_votes": len(v),
        "n_rating_votes": len(r),
        "kinds": v["kind"].value_counts().to_dict(),
        "n_raters": int(r["rater"].nunique()),
        "n_stimuli": len(stim),
        "n_gold_votes": len(gold),
        "n_gold_misses": int((~gold["passed"]).sum()),
        "estimators": {
            "mos_ci": ci,
            "bt500": f"{BT500_VERSION}/zero_std=skip",
            "rater_flags": (
                "bt500, corr_with_others < 0.75, gold missed (outside its >=/<= threshold, "
                f"or off by > 1), score variance < {min_var:g} over >= {STRAIGHTLINE_MIN_VOTES} votes"
            ),
            "subject_model": quality.attrs["estimator"],
            "subject_model_iterations": quality.attrs["n_iter"],
            "significance": (
                "crossed t (raters and images random; moments, Satterthwaite df), Holm and BH "
                "per dataset"
            ),
            "significance_paper": (
                f"wilcoxon signed-rank, pairing={pairing}, raters and images fixed, Holm and BH "
                "per dataset"
            ),
            "mos_ci_general": "crossed random raters and images (moments), Satterthwaite df",
        },
        "flags": {name: int(raters[col].sum()) for col, name in FLAG_COLUMNS.items()},
        "excluded_in_mos_screened": _excluded(raters),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
        },
        "notes": notes,
    }
