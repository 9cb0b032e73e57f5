"""The open recruitment link for crowd platforms (Prolific, MTurk, others): one session per
participant id, entered again only by the browser that made it or the same platform session."""

import hashlib
import re

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt

from study.models import Campaign, consent_for_display
from study.models.tokens import participant_key
from study.rating.access import not_live

PARTICIPANT_PARAMS = ("PROLIFIC_PID", "workerId", "participant", "PARTICIPANT_ID", "pid")
PARTICIPANT_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,200}$")


def _participant(params):
    for name in PARTICIPANT_PARAMS:
        if params.get(name):
            return name, params[name].strip()
    return None, ""


def _join_cookie(campaign):
    # Named after a digest of the campaign's recruitment token: a cookie names no database row.
    return "srmos-join-" + hashlib.sha256(campaign.recruit_token.encode()).hexdigest()[:12]


@never_cache
@xframe_options_exempt
def join(request, recruit_token):
    """The open recruitment link for crowd platforms: one session per participant id.

    MTurk shows the link inside a frame on its own site, where the session's cookies would be
    third-party: there the page only offers to open the study in a new tab, top-level.
    """
    campaign = Campaign.objects.filter(recruit_token=recruit_token).first()
    if campaign is None:
        raise Http404("No such study.")
    params = request.GET
    if params.get("assignmentId") == "ASSIGNMENT_ID_NOT_AVAILABLE":
        context = {"campaign": campaign, "consent": consent_for_display(campaign)}
        return render(request, "study/preview.html", context)
    source, participant = _participant(params)
    # An id of punctuation alone is no one: its participant key would be empty.
    if not participant_key(participant) or not PARTICIPANT_RE.match(participant):
        if campaign.status != Campaign.LIVE:
            return not_live(request, campaign)
        return render(request, "study/join_error.html", {"campaign": campaign}, status=400)
    platform = {"PROLIFIC_PID": "prolific", "workerId": "mturk"}.get(source, "other")
    keep = ("STUDY_ID", "SESSION_ID", "assignmentId", "hitId", "turkSubmitTo")
    data = {k: params[k][:300] for k in keep if params.get(k)}
    rater = campaign.raters.filter(participant_key=participant_key(participant)).first()
    if rater is not None:
        if not _may_rejoin(request, rater, data):
            return render(request, "study/join_taken.html", {"campaign": campaign}, status=403)
        if data and data != rater.platform_data and campaign.status == Campaign.LIVE:
            rater.update_platform_data(data)
        return _enter(request, rater)
    one_each = {"campaign": campaign, "client_limit": True}
    if _has_another_session(request, campaign):
        return render(request, "study/join_taken.html", one_each, status=403)
    key = client_key(request)
    rater = campaign.enrol(participant, client_key=key, platform=platform, platform_data=data)
    if rater == Campaign.NOT_LIVE:
        return not_live(request, campaign)
    if rater == Campaign.NO_RECRUITMENT:
        return render(request, "study/closed.html", {"campaign_status": "no-recruitment"})
    if rater == Campaign.FULL_UP:
        return render(request, "study/full.html", {"campaign": campaign})
    if rater == Campaign.CLIENT_LIMIT:
        return render(request, "study/join_taken.html", one_each, status=403)
    return _enter(request, rater)


def client_key(request):
    """A digest of the network address and browser of a request: what "one client" means for
    the open link's sessions_per_client. Behind the documented proxy the address is the last
    one it appended to X-Forwarded-For (a client can write the ones before it)."""
    address = request.META.get("REMOTE_ADDR", "")
    if settings.BEHIND_TLS_PROXY and request.META.get("HTTP_X_FORWARDED_FOR"):
        address = request.META["HTTP_X_FORWARDED_FOR"].split(",")[-1].strip()
    agent = request.headers.get("User-Agent", "")[:500]
    return hashlib.sha256(f"{address}|{agent}".encode()).hexdigest()[:32]


def _has_another_session(request, campaign):
    """This browser holds the join cookie of another session of the campaign (a new id typed
    into the same browser), and the campaign allows one session per client."""
    if campaign.sessions_per_client != 1:
        return False
    token = request.get_signed_cookie(_join_cookie(campaign), default=None)
    return bool(token) and campaign.raters.filter(token=token).exists()


def _may_rejoin(request, rater, data):
    """Knowing a participant id is not enough to open that participant's session."""
    if request.get_signed_cookie(_join_cookie(rater.campaign), default=None) == rater.token:
        return True
    same = [k for k in ("SESSION_ID", "assignmentId") if k in data and k in rater.platform_data]
    return bool(same) and all(data[k] == rater.platform_data[k] for k in same)


def _enter(request, rater):
    url = reverse("study:session", args=[rater.token])
    if rater.platform == "mturk":
        response = render(request, "study/mturk_start.html", {"url": url})
    else:
        response = redirect(url)
    response.set_signed_cookie(
        _join_cookie(rater.campaign),
        rater.token,
        max_age=90 * 24 * 3600,
        httponly=True,
        samesite="Lax",
        # Over https (BEHIND_TLS_PROXY makes the proxy's https count) never sent in clear; the
        # embedded default on http://127.0.0.1 still gets it.
        secure=request.is_secure(),
    )
    return response
