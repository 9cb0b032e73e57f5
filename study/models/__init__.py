"""The study's tables, from the bottom of the data path up: catalog -> campaign -> session.

Django finds the models here (the app label stays `study`, so table names and migrations are
unchanged); the migrations also name `public_id`, `rater_token`, `completion_code` and
`source_upload_to` by their path in this package.
"""

from study.analysis import session_quality, vote_flags
from study.models.campaign import CALIBRATION_METHODS, VOTE_FLOOR_MS, Campaign, Candidate
from study.models.catalog import (
    Dataset,
    ImportedResult,
    LowResImage,
    Method,
    SourceImage,
    source_upload_to,
)
from study.models.imports import ImportJob as ImportJob
from study.models.networks import ModelRegistration as ModelRegistration
from study.models.order import session_order, trial_order
from study.models.report_cache import ReportCache as ReportCache
from study.models.session import (
    GOLD_EXPECTATIONS,
    Rater,
    Trial,
    VoteInvalid,
    VoteOutcome,
    VoteRejected,
    VoteTooFast,
)
from study.models.tokens import completion_code, public_id, rater_token
from study.models.tokens import rater_url as rater_url
from study.models.welcome import consent_for_display, instructions_for, session_estimate

__all__ = [
    "CALIBRATION_METHODS",
    "GOLD_EXPECTATIONS",
    "VOTE_FLOOR_MS",
    "Campaign",
    "Candidate",
    "Dataset",
    "ImportedResult",
    "LowResImage",
    "Method",
    "Rater",
    "SourceImage",
    "Trial",
    "VoteInvalid",
    "VoteOutcome",
    "VoteRejected",
    "VoteTooFast",
    "completion_code",
    "public_id",
    "rater_token",
    "session_quality",
    "source_upload_to",
    "consent_for_display",
    "instructions_for",
    "session_estimate",
    "session_order",
    "trial_order",
    "vote_flags",
]
