"""The display check's verdict: can the campaign's largest image be shown at 1:1 device pixels
in the browser that measured itself? Kept on the session by `Rater.record_display_check`."""

from django.db.models import Max
from django.utils import timezone

from study.models.campaign import Candidate

# Room the rating page needs around the image (progress bar, question, buttons), in CSS px,
# and the page's side padding plus a scroll bar.
UI_HEIGHT = 150
UI_WIDTH = 40
PAIR_GAP = 16  # CSS pixels between the two images of a pair


def largest_image(campaign):
    """(width, height) in device pixels of the campaign's largest made image."""
    sizes = campaign.candidates.filter(status=Candidate.DONE).aggregate(
        w=Max("width"), h=Max("height")
    )
    return sizes["w"] or 0, sizes["h"] or 0


def pair_layout(need_w, viewport_width, dpr):
    """Side by side when two of the campaign's largest images fit across at 1:1, else one at a
    time with a key that toggles ("side-by-side" or "toggle")."""
    return "side-by-side" if 2 * need_w / dpr + PAIR_GAP <= viewport_width else "toggle"


def display_verdict(campaign, m, user_agent):
    """(the check as recorded, passed?) for measurements `m` (viewport_width/height, dpr,
    screen_width/height, go_on). A campaign whose policy is "warn" lets a rater go on anyway;
    the check records that they did."""
    need_w, need_h = largest_image(campaign)
    fits = (
        need_w / m["dpr"] <= m["viewport_width"]
        and need_h / m["dpr"] <= m["viewport_height"] - UI_HEIGHT
    )
    override = bool(m.get("go_on")) and campaign.display_policy == "warn"
    check = {
        "at": timezone.now().isoformat(),
        "viewport": [m["viewport_width"], m["viewport_height"]],
        "screen": [m.get("screen_width"), m.get("screen_height")],
        "dpr": m["dpr"],
        "needed_css_px": [
            round(need_w / m["dpr"]) + UI_WIDTH,
            round(need_h / m["dpr"]) + UI_HEIGHT,
        ],
        "fits": fits,
        "went_on_anyway": override and not fits,
        # Paired comparison: both versions side by side at 1:1 when two fit across, else one
        # at a time with a key that toggles between them; recorded with the check.
        "pair_layout": pair_layout(need_w, m["viewport_width"], m["dpr"]),
        "user_agent": user_agent[:500],
    }
    return check, fits or override
