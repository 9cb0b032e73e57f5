import re

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_POST

from study.forms import DisplayCheckForm, VoteForm
from study.models import Campaign, Candidate, Rater, Trial, VoteRejected

SCALE = [(1, "Bad"), (2, "Poor"), (3, "Fair"), (4, "Good"), (5, "Excellent")]
# Room the rating page needs around the image (progress bar, question, buttons), in CSS px,
# and the page's side padding plus a scroll bar.
UI_HEIGHT = 150
UI_WIDTH = 40
MTURK_SUBMIT_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
PARTICIPANT_PARAMS = ("PROLIFIC_PID", "workerId", "participant", "PARTICIPANT_ID", "pid")
PARTICIPANT_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,200}$")


def _get_rater(token):
    """The only way a view reaches a rater: an unknown token is a 404, never a hint."""
    rater = Rater.objects.select_related("campaign").filter(token=token).first()
    if rater is None:
        raise Http404("No such session.")
    return rater


def _not_live(request, campaign, status=200):
    return render(request, "study/closed.html", {"campaign_status": campaign.status}, status=status)


def home(request):
    return render(request, "study/home.html")


def healthz(request):
    """For load balancers and the vote benchmark's baseline: no database, no template."""
    return JsonResponse({"ok": True})


def _display_key(rater):
    return f"display-ok-{rater.pk}"


def _largest_image(campaign):
    sizes = campaign.candidates.filter(status=Candidate.DONE).aggregate(
        w=Max("width"), h=Max("height")
    )
    return sizes["w"] or 0, sizes["h"] or 0


def _trial_payload(rater, upcoming=None):
    """The current trial as the page needs it: an opaque image URL and its pixel size, no more.

    None when every trial is answered. The following trial's image URL comes along for prefetch.
    `upcoming`: the next pending trials (candidates loaded) when the caller has them already.
    """
    if upcoming is None:
        upcoming = list(rater.trials.pending().select_related("candidate")[:2])
    if not upcoming:
        return None
    trial = upcoming[0]
    if trial.shown_at is None:
        Trial.objects.filter(pk=trial.pk, shown_at__isnull=True).update(shown_at=timezone.now())
    total = rater.n_trials
    following = upcoming[1] if len(upcoming) > 1 else None
    return {
        "position": trial.position,
        "number": trial.position + 1,
        "total": total,
        "percent": round(100 * trial.position / total) if total else 0,
        "src": reverse("study:image", args=[rater.token, trial.position]),
        "width": trial.candidate.width,
        "height": trial.candidate.height,
        "next_src": reverse("study:image", args=[rater.token, following.position])
        if following
        else None,
    }


@never_cache
def session(request, token):
    rater = _get_rater(token)
    campaign = rater.campaign
    if campaign.status != Campaign.LIVE:
        if rater.completed_at:
            return redirect("study:done", token=token)
        return _not_live(request, campaign)
    upcoming = list(rater.trials.pending().select_related("candidate")[:2])
    if not upcoming:
        return redirect("study:done", token=token)
    if rater.consented_at is None:
        return render(
            request, "study/welcome.html", {"rater": rater, "campaign": campaign, "scale": SCALE}
        )
    if not request.session.get(_display_key(rater)):
        width, height = _largest_image(campaign)
        return render(
            request,
            "study/display_check.html",
            {
                "rater": rater,
                "campaign": campaign,
                "need_width": width,
                "need_height": height,
                "ui_height": UI_HEIGHT,
            },
        )
    if rater.calibrated_at is None:
        calibration = campaign.calibration_trials()
        if calibration:
            return _render_calibration(request, rater, calibration)
    return _render_trial(request, rater, upcoming=upcoming)


def _render_trial(request, rater, error=None, status=200, upcoming=None):
    ctx = {
        "rater": rater,
        "campaign": rater.campaign,
        "trial": _trial_payload(rater, upcoming),
        "scale": SCALE,
        "error": error,
    }
    return render(request, "study/trial.html", ctx, status=status)


def _render_calibration(request, rater, calibration):
    items = [
        {
            "src": reverse("study:calibration_image", args=[rater.token, c.public_id]),
            "width": c.width,
            "height": c.height,
            "label": dict(SCALE)[score],
            "score": score,
        }
        for c, score in calibration
    ]
    return render(request, "study/calibration.html", {"rater": rater, "items": items})


def _refuse(request, rater, message, status):
    """The trial page again with the reason a vote was not taken (forms without JavaScript)."""
    if not rater.trials.pending().exists():
        return redirect("study:done", token=rater.token)
    return _render_trial(request, rater, error=message, status=status)


@require_POST
def consent(request, token):
    rater = _get_rater(token)
    if rater.campaign.status != Campaign.LIVE:
        return _not_live(request, rater.campaign, status=409)
    if request.POST.get("consent") != "yes":
        return render(
            request,
            "study/welcome.html",
            {
                "rater": rater,
                "campaign": rater.campaign,
                "scale": SCALE,
                "error": "Please tick the box to give your consent.",
            },
            status=400,
        )
    Rater.objects.filter(pk=rater.pk, consented_at__isnull=True).update(
        consented_at=timezone.now(), user_agent=request.headers.get("User-Agent", "")[:500]
    )
    return redirect("study:session", token=token)


@require_POST
def display_check(request, token):
    rater = _get_rater(token)
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
        "user_agent": request.headers.get("User-Agent", "")[:500],
    }
    with transaction.atomic():
        locked = Rater.objects.select_for_update().get(pk=rater.pk)
        locked.display_checks = [*locked.display_checks, check][-20:]
        locked.save(update_fields=["display_checks"])
    if fits or override:
        request.session[_display_key(rater)] = True
        return redirect("study:session", token=token)
    return render(
        request,
        "study/display_check.html",
        {
            "rater": rater,
            "campaign": campaign,
            "need_width": need_w,
            "need_height": need_h,
            "ui_height": UI_HEIGHT,
            "too_small": check,
        },
    )


@require_POST
def calibration_done(request, token):
    rater = _get_rater(token)
    Rater.objects.filter(pk=rater.pk, calibrated_at__isnull=True).update(
        calibrated_at=timezone.now()
    )
    return redirect("study:session", token=token)


def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "")


@require_POST
def vote(request, token):
    rater = _get_rater(token)
    as_json = _wants_json(request)
    if rater.campaign.status != Campaign.LIVE:
        if as_json:
            return JsonResponse({"error": "This study is not open."}, status=409)
        return _not_live(request, rater.campaign, status=409)
    if rater.consented_at is None:
        if as_json:
            return JsonResponse(
                {"error": "Please start from your link.", "resync": True}, status=409
            )
        return redirect("study:session", token=token)
    form = VoteForm(request.POST)
    if not form.is_valid():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        if as_json:
            return JsonResponse({"error": message}, status=400)
        return _refuse(request, rater, message, status=400)
    data = form.cleaned_data
    try:
        # One transaction, one commit: the vote, the bookkeeping and the next trial's shown_at.
        with transaction.atomic():
            outcome = rater.cast_vote(data["position"], data["score"], data.get("duration_ms"))
            payload = _trial_payload(rater, outcome.upcoming) if as_json else None
    except VoteRejected as exc:
        if as_json:
            return JsonResponse({"error": str(exc), "resync": True}, status=409)
        return _refuse(request, rater, str(exc), status=409)
    if not as_json:
        return redirect("study:session", token=token)
    return JsonResponse(
        {
            "status": "stored" if outcome.stored else "duplicate",
            "next": payload,
            "done_url": reverse("study:done", args=[token]),
        }
    )


@never_cache
def done(request, token):
    rater = _get_rater(token)
    if rater.trials.pending().exists():
        return redirect("study:session", token=token)
    campaign = rater.campaign
    code = campaign.completion_code
    redirect_url = ""
    if campaign.completion_url:
        redirect_url = campaign.completion_url.replace("{code}", code).replace(
            "{participant}", rater.participant_id
        )
    mturk = None
    submit_to = rater.platform_data.get("turkSubmitTo", "")
    if rater.platform == "mturk" and submit_to.rstrip("/") in MTURK_SUBMIT_HOSTS:
        mturk = {
            "action": submit_to.rstrip("/") + "/mturk/externalSubmit",
            "assignment_id": rater.platform_data.get("assignmentId", ""),
        }
    return render(
        request,
        "study/done.html",
        {"rater": rater, "code": code, "redirect_url": redirect_url, "mturk": mturk},
    )


def _png_response(candidate):
    try:
        with default_storage.open(candidate.file.name, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise Http404("No such image.") from None
    # Plain bytes: no file name or Content-Disposition, nothing but "a PNG".
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def trial_image(request, token, position):
    """A trial's image by its place in the rater's session: the URL says nothing of the
    candidate, so a retest showing looks like any other image."""
    rater = _get_rater(token)
    trial = (
        Trial.objects.filter(rater=rater, position=position, candidate__status=Candidate.DONE)
        .select_related("candidate")
        .first()
    )
    if trial is None or not trial.candidate.file:
        raise Http404("No such image.")
    return _png_response(trial.candidate)


def calibration_image(request, token, public_id):
    rater = _get_rater(token)
    candidate = Candidate.objects.filter(
        public_id=public_id,
        campaign=rater.campaign,
        role=Candidate.CALIBRATION,
        status=Candidate.DONE,
    ).first()
    if candidate is None or not candidate.file:
        raise Http404("No such image.")
    return _png_response(candidate)


def _participant(params):
    for name in PARTICIPANT_PARAMS:
        if params.get(name):
            return name, params[name].strip()
    return None, ""


JOIN_COOKIE = "srmos-join-{}"


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
        return render(request, "study/preview.html", {"campaign": campaign})
    source, participant = _participant(params)
    if not participant or not PARTICIPANT_RE.match(participant):
        if campaign.status != Campaign.LIVE:
            return _not_live(request, campaign)
        return render(request, "study/join_error.html", {"campaign": campaign}, status=400)
    platform = {"PROLIFIC_PID": "prolific", "workerId": "mturk"}.get(source, "other")
    keep = ("STUDY_ID", "SESSION_ID", "assignmentId", "hitId", "turkSubmitTo")
    data = {k: params[k][:300] for k in keep if params.get(k)}
    rater = campaign.raters.filter(participant_id=participant).first()
    if rater is not None:
        if not _may_rejoin(request, rater, data):
            return render(request, "study/join_taken.html", {"campaign": campaign}, status=403)
        if data and data != rater.platform_data:
            # A new MTurk assignment of the same worker is submitted to the new assignment.
            Rater.objects.filter(pk=rater.pk).update(platform_data={**rater.platform_data, **data})
        return _enter(request, rater)
    if campaign.status != Campaign.LIVE:
        return _not_live(request, campaign)
    if not campaign.open_recruitment:
        return render(request, "study/closed.html", {"campaign_status": "no-recruitment"})
    try:
        with transaction.atomic():
            if campaign.max_participants:
                # Joins of a capped campaign take turns (a row lock on PostgreSQL; SQLite's
                # immediate transactions already serialise writers), so simultaneous joins
                # cannot all see one free place and overfill the cap. The row is read again
                # under the lock: a cap or status changed meanwhile counts.
                campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
                if campaign.status != Campaign.LIVE:
                    return _not_live(request, campaign)
                if not campaign.open_recruitment:
                    return render(
                        request, "study/closed.html", {"campaign_status": "no-recruitment"}
                    )
                joined = campaign.raters.exclude(participant_id="")
                # The same participant's other request may have taken the place a moment ago.
                rater = joined.filter(participant_id=participant).first()
                if rater is None and joined.count() >= campaign.max_participants:
                    return render(request, "study/full.html", {"campaign": campaign})
            if rater is None:
                rater = Rater.objects.create_with_trials(
                    campaign, participant_id=participant, platform=platform, platform_data=data
                )
    except IntegrityError:
        # Two requests for one participant at once: the other one made the session.
        rater = campaign.raters.get(participant_id=participant)
    return _enter(request, rater)


def _may_rejoin(request, rater, data):
    """Knowing a participant id is not enough to open that participant's session."""
    if request.get_signed_cookie(JOIN_COOKIE.format(rater.pk), default=None) == rater.token:
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
        JOIN_COOKIE.format(rater.pk),
        rater.token,
        max_age=90 * 24 * 3600,
        httponly=True,
        samesite="Lax",
    )
    return response
