"""Paired comparison (forced choice): two versions of the same image, A and B; the rater picks
the one that looks better. Scaled to JOD (Thurstone Case V, pwcmp's convention). A trial's
`score` is the choice: 1 for A (the trial's candidate), 2 for B (its partner)."""

import pandas as pd

from study.analysis import plots
from study.analysis.jod import jod_table
from study.analysis.pair_checks import pair_session_quality
from study.analysis.pc_report import write_comparison_report
from study.models import Candidate, Trial, rater_url
from study.models.protocol import Answer, Protocol, register
from study.protocols import simulation
from study.protocols.active import choose_pairs
from study.protocols.pairs import design_pairs, pair_session

COLUMNS = ["rater", "dataset", "image", "method_a", "method_b", "choice", "kind", "position"]
A, B = 1, 2
INSTRUCTIONS = (
    "You will see two versions, A and B, of the same image. Choose the one that looks better: "
    "sharper, more detailed, fewer artefacts, more natural. There are no right or wrong answers; "
    "when they look alike, go with your first impression. Please do not zoom the page: images "
    "must be seen at their real size."
)


class PairedComparison(Protocol):
    code = "pc"
    label = (
        "Paired comparison: two versions of the same image, which looks better "
        "(forced choice, scaled to JOD)"
    )
    task = "choose, for each pair of versions of an image, the one that looks better"
    score_name = "jod"
    instructions = INSTRUCTIONS
    analysis = "comparisons"
    trial_template = "study/pair.html"
    calibration_intro = (
        "Before you start, here are examples of the range you will see: a version of "
        "<strong>bad</strong> quality and one of <strong>excellent</strong> quality. In the "
        "session you will see two versions of the same image and choose the one that looks "
        "better. These are not rated. Use the Next button or the Enter key."
    )
    calibration_preview = "bad and excellent images"
    question = "Which version of the image looks better?"

    def answers(self):
        return [
            Answer(A, "A looks better", ("1", "ArrowLeft"), "A", "key 1 or Left arrow"),
            Answer(B, "B looks better", ("2", "ArrowRight"), "B", "key 2 or Right arrow"),
        ]

    def check_score(self, score):
        if score in (A, B):
            return ""
        return "Choose A (1) or B (2): which of the two images looks better."

    def requirements(self, methods, campaign):
        if len(list(methods)) >= 2 and campaign.pairs_per_image >= 1:
            return []
        return [
            f"Campaign {campaign.name} compares pairs: give it at least two methods and at "
            "least one pair per image."
        ]

    def design_session(self, rater):
        """Pairs per the campaign's design, shown in a seeded order with random sides
        (study.protocols.pairs)."""
        campaign = rater.campaign
        rows = list(
            campaign.candidates.filter(status=Candidate.DONE, role=Candidate.RATING).values_list(
                "pk", "image_id"
            )
        )
        seed = f"{campaign.seed}:{rater.seed}"
        active = campaign.pair_design == campaign.ACTIVE
        # Active: the images and their order are fixed now; which two versions each trial
        # compares is chosen when the page first needs it, from the votes cast by then
        # (study.protocols.active). Random pairs hold the places until then.
        design = campaign.RANDOM if active else campaign.pair_design
        pairs = design_pairs(rows, design, campaign.pairs_per_image, seed)
        return [
            {
                "candidate_id": left,
                "partner_id": right,
                "kind": "retest" if repeat else "rating",
                "repeat": repeat,
                "pair_pending": active and not repeat,
            }
            for left, right, repeat in pair_session(pairs, campaign.retest_share, seed)
        ]

    def items_per_session(self, campaign, rated):
        # Comparisons, not candidates: per image every pair, or pairs_per_image of them.
        methods = campaign.methods.count()
        images = rated // methods if methods else 0
        per_image = methods * (methods - 1) // 2
        if campaign.pair_design != campaign.FULL:
            per_image = min(per_image, campaign.pairs_per_image)
        return images * per_image

    def before_show(self, rater, upcoming):
        # The next trial's pair too: the page prefetches its images, so it must not change.
        choose_pairs(rater, upcoming)

    def trial_payload(self, rater, trial, following):
        # The second version of the same image (B), by the trial's place.
        return {
            "partner_src": rater_url("study:partner", rater.token, trial.position),
            "partner_next_src": rater_url("study:partner", rater.token, following.position)
            if following
            else None,
        }

    def trial_context(self, rater):
        return {"pair_layout": rater.pair_layout()}

    def calibration_label(self, score):
        # The anchors are qualities, not answers: a comparison's 1 means "A looks better".
        return {1: "Bad", 5: "Excellent"}.get(score, "")

    def quality(self, rater):
        pairs = rater.trials.answered().values_list(
            "candidate_id", "partner_id", "score", "kind", "server_ms"
        )
        return pair_session_quality(pairs, rater.display_checks)

    def votes(self, campaign, people_only=False):
        """The answered comparisons in the long format study.analysis.pairwise takes:
        ``rater, dataset, image, method_a, method_b, choice`` (the chosen method), ``kind,
        position, timestamp, duration_ms`` (claimed), ``server_ms`` (measured), ``rater_platform``,
        in the order they were answered
        (replayable)."""
        trials = Trial.objects.for_analysis(campaign, people_only).filter(partner__isnull=False)
        rows = trials.order_by("answered_at", "pk").values_list(
            "rater_id",
            "candidate__image__dataset__name",
            "candidate__image__name",
            "candidate__method__slug",
            "partner__method__slug",
            "score",
            "kind",
            "position",
            "answered_at",
            "duration_ms",
            "server_ms",
            "rater__platform",
        )
        records = [
            (Trial.rater_key(r[0]), *r[1:5], r[3] if r[5] == A else r[4], *r[6:]) for r in rows
        ]
        return pd.DataFrame(
            records, columns=[*COLUMNS, "timestamp", "duration_ms", "server_ms", "rater_platform"]
        )

    def write_report(self, campaign, frame, out_dir, **options):
        mos = None
        if campaign.mos_campaign_id:
            rated = campaign.mos_campaign.kind.votes(campaign.mos_campaign)
            mos = campaign.mos_campaign.kind.summary_table(campaign.mos_campaign, rated)
            mos = mos.rename(columns={campaign.mos_campaign.kind.score_name: "mos"})
            mos = mos if len(mos) else None
        return write_comparison_report(
            frame,
            out_dir,
            method_order=options.get("method_order"),
            mos=mos,
            downloads=options.get("downloads", True),
            plots_enabled=options.get("plots_enabled", True),
            tables=options.get("tables"),
        )

    def draw_figures(self, campaign, frame, out_dir, formats, **options):
        order = options.get("method_order")
        jod = jod_table(frame, method_order=order)
        return plots.jod_ci(jod, out_dir, order, formats)

    def summary_table(self, campaign, frame, method_order=None):
        if frame.empty:
            return pd.DataFrame(columns=["dataset", "method", "jod", "ci95_low", "ci95_high"])
        return jod_table(frame, method_order=method_order)

    def simulate(self, campaign, sessions, options):
        return simulation.paired_sessions(self, campaign, sessions, options)


PC_PROTOCOL = register(PairedComparison())
