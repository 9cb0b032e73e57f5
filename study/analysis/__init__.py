"""Pure analysis of MOS studies: a long vote DataFrame in, tables and plots out.

No Django or ORM import anywhere in this package: ``python -m study.analysis --votes VOTES.csv
--out DIR`` works on any long-format CSV. See docs/analysis.md.
"""

from .mapping import vqeg_logistic
from .mos import mos_per_stimulus, mos_table
from .null_studies import null_design, null_scores
from .objective import method_ranking, objective_correlation
from .paper_tests import friedman, pairwise_tests
from .power import detectable_difference, power_table
from .reliability import alpha_bootstrap_ci, icc, krippendorff_alpha, reliability_table
from .report import draw_figures, table2, write_report
from .schema import VotesError, validate_votes
from .screening import (
    bt500_screening,
    mos_with_and_without,
    p913_adjusted,
    p913_bias,
    rater_agreement,
    screen_raters,
)
from .session_checks import (
    STRAIGHTLINE_MIN_VOTES,
    gold_consistency,
    gold_missed,
    is_straightliner,
    retest_agreement,
    session_quality,
    straightlining,
    vote_flags,
)
from .significance import crossed_tests, verdicts
from .simulate import paper_design, simulate_votes, unknown_methods
from .subject_model import p910_mle
from .sureal_io import to_sureal_dataset

__all__ = [
    "STRAIGHTLINE_MIN_VOTES",
    "VotesError",
    "alpha_bootstrap_ci",
    "bt500_screening",
    "crossed_tests",
    "detectable_difference",
    "draw_figures",
    "friedman",
    "gold_consistency",
    "gold_missed",
    "icc",
    "is_straightliner",
    "krippendorff_alpha",
    "method_ranking",
    "mos_per_stimulus",
    "mos_table",
    "mos_with_and_without",
    "null_design",
    "null_scores",
    "objective_correlation",
    "p910_mle",
    "p913_adjusted",
    "p913_bias",
    "pairwise_tests",
    "paper_design",
    "power_table",
    "rater_agreement",
    "reliability_table",
    "retest_agreement",
    "screen_raters",
    "session_quality",
    "simulate_votes",
    "straightlining",
    "table2",
    "to_sureal_dataset",
    "unknown_methods",
    "validate_votes",
    "verdicts",
    "vote_flags",
    "vqeg_logistic",
    "write_report",
]
