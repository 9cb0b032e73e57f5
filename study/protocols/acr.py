"""Absolute category rating (ITU-T P.910 / P.808), as the SRGAN paper ran it: one image at a
time, its quality from 1 (bad) to 5 (excellent)."""

import numpy as np
import pandas as pd

from study.analysis import (
    draw_figures,
    draw_figures_of,
    mos_table,
    session_quality,
    validate_votes,
    write_report,
)
from study.analysis.schema import STIMULUS
from study.models import Candidate, Rater, Trial
from study.models.order import session_order
from study.models.protocol import Answer, Protocol, register
from study.models.session import GOLD_EXPECTATIONS
from study.models.texts import DEFAULT_INSTRUCTIONS
from study.protocols import simulation

VOTE_COLUMNS = ["rater", "dataset", "image", "method", "score", "kind", "repeat", "timestamp"]
EXTRA_COLUMNS = ["duration_ms", "server_ms", "flags", "rater_platform", "expected", "position"]


class ACR(Protocol):
    code = "acr"
    label = "ACR: one image at a time, quality 1 (bad) to 5 (excellent), as the SRGAN paper"
    task = "rate the quality of each one"
    instructions = DEFAULT_INSTRUCTIONS
    calibration_intro = (
        "Before you start, here are examples of the two ends of the scale: images of "
        "<strong>bad</strong> quality (1) and of <strong>excellent</strong> quality (5). These "
        "are not rated. Use the Next button or the Enter key."
    )
    calibration_preview = "bad and excellent images"
    question = "How good is the quality of this image?"
    simulated_scale = "acr"  # study.analysis.simulate: votes around the paper's MOS
    LABELS = ["Bad", "Poor", "Fair", "Good", "Excellent"]

    def answers(self):
        return [Answer(i, label, (str(i),)) for i, label in enumerate(self.LABELS, start=1)]

    def design_session(self, rater):
        campaign = rater.campaign
        rows = list(
            campaign.candidates.filter(status=Candidate.DONE, role=Candidate.RATING).values_list(
                "pk", "image_id", "method__slug"
            )
        )
        slugs = {pk: slug for pk, _, slug in rows}
        order = session_order(
            [(pk, image) for pk, image, _ in rows],
            campaign.retest_share,
            seed=f"{campaign.seed}:{rater.seed}",
        )
        return [
            {
                "candidate_id": pk,
                "kind": "retest" if repeat else "rating",
                "repeat": repeat,
                "expected": GOLD_EXPECTATIONS.get(slugs[pk], "") if campaign.gold_items else "",
            }
            for pk, repeat in order
        ]

    def quality(self, rater):
        votes = list(
            rater.trials.answered().values_list(
                "candidate_id", "score", "kind", "flags", "server_ms", "expected"
            )
        )
        return session_quality(
            votes, rater.campaign.straightline_min_variance, rater.display_checks
        )

    def votes(self, campaign, people_only=False):
        """``rater`` (``r`` + the session's id), ``dataset, image, method, score, kind, repeat,
        timestamp, duration_ms`` (the page's claim), ``server_ms`` (measured), ``flags,
        rater_platform, expected, position, lr``."""
        return self._votes(campaign, people_only, typed=False)

    def report_votes(self, campaign):
        """:meth:`votes` as :func:`study.analysis.validate_votes` returns it (every report
        validates its votes first): identifiers read as categoricals and times as datetimes,
        so that the validation is a pass over a handful of categories, not over every vote's
        text (a paper-size report's read and validation: 0.07 s instead of 0.12 s)."""
        frame = self._votes(campaign, False, typed=True)
        return validate_votes(frame) if len(frame) else frame

    def _votes(self, campaign, people_only, typed):
        # Ordered by session and position here, not by the database: its sort of a paper-size
        # study's rows took 20 ms, numpy's takes one (the pair is unique: the same order).
        trials = Trial.objects.for_analysis(campaign, people_only).order_by()
        c = trials.columns(
            *("rater_id", "candidate_id", "score", "kind", "repeat", "answered_at"),
            *("duration_ms", "server_ms", "flags", "expected", "position"),
            iso=not typed,
        )
        # Names and platforms joined here from a row per candidate and per session, not per
        # vote (the strings of a join per vote were most of the read's time).
        names = pd.DataFrame.from_records(
            list(
                Candidate.objects.filter(campaign=campaign).values_list(
                    "pk", "image__dataset__name", "image__name", "method__slug"
                )
            ),
            columns=["pk", "dataset", "image", "method"],
        )
        at = pd.Index(names["pk"]).get_indexer(np.asarray(c["candidate_id"], dtype="int64"))
        if (at < 0).any():  # a vote on another campaign's candidate: none is made so
            raise ValueError(f"campaign {campaign.name} has votes on candidates it does not hold")
        raters = pd.DataFrame.from_records(
            list(Rater.objects.filter(campaign=campaign).values_list("pk", "platform")),
            columns=["pk", "platform"],
        )
        of_rater = pd.Index(raters["pk"]).get_indexer(np.asarray(c["rater_id"], dtype="int64"))
        if (of_rater < 0).any():  # a session deleted between the two reads (outside a snapshot)
            raise ValueError(f"campaign {campaign.name} changed while its votes were read: retry")
        key = np.array([Trial.rater_key(r) for r in raters["pk"]], dtype=object)
        joined = _categorical if typed and len(at) else (lambda labels, rows: labels[rows])
        # rater_platform tells real sessions ("link", "prolific", "mturk"...) from "simulated"
        # ones; expected marks gold items (">=4" HR, "<=2" nearest neighbour); position is the
        # trial's place in its session (retest distances).
        cells = {
            "rater": joined(key, of_rater),
            **{k: joined(names[k].to_numpy(dtype=object), at) for k in STIMULUS},
            **{k: c[k] for k in ("score", "kind", "repeat")},
            "timestamp": _utc_times(c["answered_at"]) if typed else c["answered_at"],
            **{k: c[k] for k in ("duration_ms", "server_ms", "flags")},
            "rater_platform": raters["platform"].to_numpy(dtype=object)[of_rater],
            **{k: c[k] for k in ("expected", "position")},
        }
        # No votes: every column of text type, as a frame of no rows has them.
        frame = pd.DataFrame(cells if len(at) else [], columns=[*VOTE_COLUMNS, *EXTRA_COLUMNS])
        order = np.lexsort(
            (np.asarray(c["position"], dtype="int64"), raters["pk"].to_numpy()[of_rater])
        )
        frame = frame.take(order).reset_index(drop=True)
        # How the LR inputs were made travels with every export, per method: imported results
        # may have been made from other LR images than the campaign's (Method.lr_input).
        frame["lr"] = frame["method"].map(campaign.lr_by_method()).astype(object)
        return frame.astype({"score": "int64", "repeat": "int64", "position": "int64"})

    def write_report(self, campaign, frame, out_dir, **options):
        return write_report(
            frame,
            out_dir,
            objective=options.get("objective"),
            min_var=campaign.straightline_min_variance,  # the live flags' threshold
            plots_enabled=options.get("plots_enabled", True),
            method_order=options.get("method_order"),
            downloads=options.get("downloads", True),
            score_name=self.score_name,
            tables=options.get("tables"),
            beside=options.get("beside"),
            figure_inputs=options.get("figure_inputs"),
        )

    def draw_figures(self, campaign, frame, out_dir, formats, **options):
        if options.get("figure_inputs"):  # what the tables computed: nothing again
            return draw_figures_of(
                options["figure_inputs"], out_dir, formats, beside=options.get("beside")
            )
        return draw_figures(
            frame,
            out_dir,
            objective=options.get("objective"),
            method_order=options.get("method_order"),
            formats=formats,
        )

    def summary_table(self, campaign, frame, method_order=None):
        columns = ["dataset", "method", "n", "mos", "std", "ci95_low", "ci95_high"]
        if frame.empty:
            table = pd.DataFrame(columns=columns)
        else:
            table = mos_table(frame, method_order=method_order)
        table["lr"] = table["method"].map(campaign.lr_by_method()).astype(object)
        return table.rename(columns={"mos": self.score_name})

    def simulate(self, campaign, sessions, options):
        return simulation.rated_sessions(self, campaign, sessions, options)


ACR_PROTOCOL = register(ACR())


def _categorical(labels, rows):
    """``labels[rows]`` as :func:`study.analysis.validate_votes` types an identifier: a
    categorical of the labels that occur, as text, in sorted order; made from the labels (a
    row per candidate or session), not from every vote's text."""
    names, code = np.unique(labels.astype(str), return_inverse=True)
    used, codes = np.unique(code[rows], return_inverse=True)
    return pd.Categorical.from_codes(codes, names[used].astype(object))


def _utc_times(micros):
    """Integer microseconds since 1970 (None: unanswered) as UTC datetimes."""
    known = np.array([m is not None for m in micros], dtype=bool)
    values = np.array([m if m is not None else 0 for m in micros], dtype="int64")
    times = pd.to_datetime(values, unit="us", utc=True)
    return times.where(known)
