"""The display check: can the largest image be shown at 1:1 device pixels in this browser?

Done once per browser (a rater who comes back on a phone checks the phone), recorded on the
session each time; the first pass moves the session on to calibration or the trials.
"""

import hashlib

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from study.models import Rater
from study.models.display import UI_HEIGHT, display_verdict, largest_image
from study.rating.access import get_rater, out_of_order
from study.rating.forms import DisplayCheckForm

DISPLAY_COOKIE_AGE = 90 * 24 * 3600


def _display_cookie(rater):
    # Named after a digest of the token, not the database id: no cookie names a row. A signed
    # cookie rather than the session: every vote checks it, and it costs no query.
    return "srmos-display-" + hashlib.sha256(rater.token.encode()).hexdigest()[:12]


def display_passed(request, rater):
    """Whether this browser passed the display check for this session."""
    cookie = request.get_signed_cookie(_display_cookie(rater), default=None, salt="display")
    return cookie == rater.token


def render_display_check(request, rater, too_small=None):
    width, height = largest_image(rater.campaign)
    context = {
        "rater": rater,
        "campaign": rater.campaign,
        "need_width": width,
        "need_height": height,
        "ui_height": UI_HEIGHT,
        "too_small": too_small,
    }
    return render(request, "study/display_check.html", context)


@require_POST
def display_check(request, token):
    rater = get_rater(token)
    # A rater who comes back on another device checks that display too.
    refused = out_of_order(request, rater, allowed=(Rater.DISPLAY, Rater.CALIBRATION, Rater.TRIALS))
    if refused:
        return refused
    form = DisplayCheckForm(request.POST)
    if not form.is_valid():
        return HttpResponse(
            "The display check needs JavaScript and sent no measurements.", status=400
        )
    user_agent = request.headers.get("User-Agent", "")
    check, passed = display_verdict(rater.campaign, form.cleaned_data, user_agent)
    rater.record_display_check(check, passed)
    if passed:
        response = redirect("study:session", token=token)
        response.set_signed_cookie(
            _display_cookie(rater),
            rater.token,
            salt="display",
            max_age=DISPLAY_COOKIE_AGE,
            httponly=True,
            samesite="Lax",
            # Over https (BEHIND_TLS_PROXY makes the proxy's https count) never sent in clear; the
            # embedded default on http://127.0.0.1 still gets it.
            secure=request.is_secure(),
        )
        return response
    return render_display_check(request, rater, too_small=check)
