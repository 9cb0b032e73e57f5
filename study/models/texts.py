"""The texts a new campaign starts with (the researcher edits them per campaign)."""

DEFAULT_CONSENT = (
    "You are invited to take part in a study of image quality. You will see a series of images "
    "and rate the quality of each one. It takes about {minutes} minutes; you can take breaks and "
    "come back later with the same link. Your scores are stored with an anonymous id and used only "
    "for research. Taking part is voluntary and you may stop at any time."
)
DEFAULT_INSTRUCTIONS = (
    "Rate the quality of each image on a scale from 1 (bad) to 5 (excellent). Judge the image "
    "itself: sharpness, detail, artefacts and how natural it looks. There are no right or wrong "
    "answers. Please do not zoom the page: images must be seen at their real size."
)

DCR_INSTRUCTIONS = (
    "Each image comes beside its reference, the original. Rate how annoying any degradation of "
    "the image is compared with the reference, from 5 (imperceptible) to 1 (very annoying). "
    "There are no right or wrong answers. Please do not zoom the page: images must be seen at "
    "their real size."
)
PC_INSTRUCTIONS = (
    "You will see two versions, A and B, of the same image. Choose the one that looks better: "
    "sharper, more detailed, fewer artefacts, more natural. There are no right or wrong answers; "
    "when they look alike, go with your first impression. Please do not zoom the page: images "
    "must be seen at their real size."
)


def instructions_for(campaign):
    """The campaign's instructions; the default text follows its protocol."""
    if campaign.instructions_text != DEFAULT_INSTRUCTIONS:
        return campaign.instructions_text
    return {"dcr": DCR_INSTRUCTIONS, "pc": PC_INSTRUCTIONS}.get(
        campaign.protocol, DEFAULT_INSTRUCTIONS
    )
