"""The display check: can the largest image be shown at 1:1 device pixels in this browser?

Done once per browser (a rater who comes back on a phone checks the phone), recorded on the
session each time; the first pass moves the session on to calibration or the trials.
"""

import hashlib

from django.db import transaction
from django.db.models import Max
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from study.models import Candidate, Rater
from study.rating.access import get_rater, out_of_order
from study.rating.forms import DisplayCheckForm

# Room the rating page needs around the image (progress bar, question, buttons), in CSS px,
# and the page's side padding plus a scroll bar.
UI_HEIGHT = 150
UI_WIDTH = 40


DISPLAY_COOKIE_AGE = 90 * 24 * 3600


def _display_cookie(rater):
    # Named after a digest of the token, not the database id: no cookie names a row. A signed
    # cookie rather than the session: every vote checks it, and it costs no query.
    return "srmos-display-" + hashlib.sha256(rater.token.encode()).hexdigest()[:12]


def display_passed(request, rater):
    """Whether this browser passed the display check for this session."""
    cookie = request.get_signed_cookie(_display_cookie(rater), default=None, salt="display")
    return cookie == rater.token


def _largest_image(campaign):
    sizes = campaign.candidates.filter(status=Candidate.DONE).aggregate(
        w=Max("width"), h=Max("height")
    )
    return sizes["w"] or 0, sizes["h"] or 0


def render_display_check(request, rater, too_small=None):
    width, height = _largest_image(rater.campaign)
    context = {
        "rater": rater,
        "campaign": rater.campaign,
        "need_width": width,
        "need_height": height,
        "ui_height": UI_HEIGHT,
        "too_small": too_small,
    }
    return render(request, "study/display_check.html", context)


PAIR_GAP = 16  # CSS pixels between the two images of a pair


def pair_layout(need_w, viewport_width, dpr):
    """Side by side when two of the campaign's largest images fit across at 1:1, else one at a
    time with a key that toggles ("side-by-side" or "toggle")."""
    return "side-by-side" if 2 * need_w / dpr + PAIR_GAP <= viewport_width else "toggle"


def current_pair_layout(rater):
    """The layout the rater's latest display check chose (side by side if none recorded)."""
    checks = rater.display_checks or []
    return (checks[-1].get("pair_layout") if checks else None) or "side-by-side"


@require_POST
def display_check(request, token):
    rater = get_rater(token)
    # A rater who comes back on another device checks that display too.
    refused = out_of_order(request, rater, allowed=(Rater.DISPLAY, Rater.CALIBRATION, Rater.TRIALS))
    if refused:
        return refused
    campaign = rater.campaign
    form = DisplayCheckForm(request.POST)
    if not form.is_valid():
        return HttpResponse(
            "The display check needs JavaScript and sent no measurements.", status=400
        )
    m = form.cleaned_data
    need_w, need_h = _largest_image(campaign)
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
        "user_agent": request.headers.get("User-Agent", "")[:500],
    }
    passed = fits or override
    with transaction.atomic():
        locked = Rater.objects.select_for_update().get(pk=rater.pk)
        locked.display_checks = [*locked.display_checks, check][-20:]
        if passed and locked.display_ok_at is None:
            locked.display_ok_at = timezone.now()
        locked.save(update_fields=["display_checks", "display_ok_at"])
    if passed:
        response = redirect("study:session", token=token)
        response.set_signed_cookie(
            _display_cookie(rater),
            rater.token,
            salt="display",
            max_age=DISPLAY_COOKIE_AGE,
            httponly=True,
            samesite="Lax",
        )
        return response
    return render_display_check(request, rater, too_small=check)
