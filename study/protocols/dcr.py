"""Degradation category rating (ITU-T P.910 / P.800 Annex D): each image beside its HR
reference, the impairment from 5 (imperceptible) to 1 (very annoying). A method's mean is a
DMOS, not an absolute quality."""

from study.models import Method, rater_url
from study.models.protocol import Answer, register
from study.protocols.acr import ACR

INSTRUCTIONS = (
    "Each image comes beside its reference, the original. Rate how annoying any degradation of "
    "the image is compared with the reference, from 5 (imperceptible) to 1 (very annoying). "
    "There are no right or wrong answers. Please do not zoom the page: images must be seen at "
    "their real size."
)


class DCR(ACR):
    code = "dcr"
    label = (
        "DCR: each image beside its HR reference, impairment 5 (imperceptible) to 1 "
        "(very annoying), ITU-T P.910 / P.800"
    )
    task = "rate how annoying any degradation of each one is, compared with its reference"
    score_name = "dmos"
    instructions = INSTRUCTIONS
    simulated_scale = "dcr"  # impairment against the reference (study.analysis.simulate)
    report_note = (
        "Degradation category rating: each score rates the impairment against the HR reference "
        "(5 imperceptible ... 1 very annoying), so a method's mean is a DMOS, not an absolute "
        "quality."
    )
    calibration_intro = (
        "Before you start, here are examples of the two ends of the scale, each beside its "
        "reference: a degradation that is <strong>very annoying</strong> (1) and one that is "
        "<strong>imperceptible</strong> (5). These are not rated. Use the Next button or the "
        "Enter key."
    )
    calibration_preview = "very annoying (1) and imperceptible (5) degradations"
    question = "Compared with the reference, how annoying is any degradation of the image to rate?"
    LABELS = [
        "Very annoying",
        "Annoying",
        "Slightly annoying",
        "Perceptible but not annoying",
        "Imperceptible",
    ]

    def answers(self):
        return [Answer(i, label, (str(i),)) for i, label in enumerate(self.LABELS, start=1)]

    def requirements(self, methods, campaign):
        if any(m.kind == Method.REFERENCE for m in methods):
            return []
        return [
            f"Campaign {campaign.name} uses DCR, which shows each image beside its HR "
            "reference: add the HR reference (method hr) to its methods."
        ]

    def serves_reference(self):
        return True

    def trial_payload(self, rater, trial, following):
        # The HR reference beside the image, by the trial's place too: it names nothing either.
        return {
            "ref_src": rater_url("study:reference", rater.token, trial.position),
            "ref_next_src": rater_url("study:reference", rater.token, following.position)
            if following
            else None,
        }

    def calibration_items(self, rater, calibration):
        # Each example beside its reference, the same image's HR calibration candidate.
        references = {c.image_id: c for c, score in calibration if score == 5}
        return [
            {"candidate": c, "score": score, "reference": references.get(c.image_id)}
            for c, score in calibration
        ]


DCR_PROTOCOL = register(DCR())
