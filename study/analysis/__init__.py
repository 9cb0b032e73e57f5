"""Pure analysis of MOS studies: a long vote DataFrame in, tables and plots out.

No Django or ORM import anywhere in this package: ``python -m study.analysis --votes VOTES.csv
--out DIR`` works on any long-format CSV. See docs/analysis.md.

The names below load their module on first use (PEP 562), so ``python -m study.analysis
--comparisons`` does not pay for the ratings' imports (scipy.stats, the subject model).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "vqeg_logistic": "mapping",
    "mos_per_stimulus": "mos",
    "mos_table": "mos",
    "null_design": "null_studies",
    "null_scores": "null_studies",
    "method_ranking": "objective",
    "objective_correlation": "objective",
    "friedman": "paper_tests",
    "pairwise_tests": "paper_tests",
    "detectable_difference": "power",
    "power_table": "power",
    "alpha_bootstrap_ci": "reliability",
    "icc": "reliability",
    "krippendorff_alpha": "reliability",
    "reliability_table": "reliability",
    "draw_figures": "report",
    "draw_figures_of": "report",
    "table2": "report",
    "write_report": "report",
    "VotesError": "schema",
    "validate_votes": "schema",
    "bt500_screening": "screening",
    "mos_with_and_without": "screening",
    "p913_adjusted": "screening",
    "p913_bias": "screening",
    "rater_agreement": "screening",
    "screen_raters": "screening",
    "STRAIGHTLINE_MIN_VOTES": "session_checks",
    "gold_consistency": "session_checks",
    "gold_missed": "session_checks",
    "is_straightliner": "session_checks",
    "retest_agreement": "session_checks",
    "session_quality": "session_checks",
    "straightlining": "session_checks",
    "vote_flags": "session_checks",
    "crossed_tests": "significance",
    "verdicts": "significance",
    "paper_design": "simulate",
    "simulate_votes": "simulate",
    "unknown_methods": "simulate",
    "p910_mle": "subject_model",
    "to_sureal_dataset": "sureal_io",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
