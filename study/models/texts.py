"""The texts a new campaign starts with (the researcher edits them per campaign)."""

# The default consent's task phrase; a protocol's own replaces it (study.models.welcome).
ACR_TASK = "rate the quality of each one"
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
