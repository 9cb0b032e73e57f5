"""The rater's session pages: welcome and consent, display check, calibration, trials, done.

Each view reaches the rater through `get_rater` (an unknown token is a 404) and leaves the
decisions to the models (`Rater.cast_vote`); the pages say nothing of the method or the image.
"""

from django.db import transaction
from django.db.models import Max
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from study.models import Campaign, Candidate, Rater, VoteRejected
from study.rating.forms import DisplayCheckForm, VoteForm

SCALE = [(1, "Bad"), (2, "Poor"), (3, "Fair"), (4, "Good"), (5, "Excellent")]
# Room the rating page needs around the image (progress bar, question, buttons), in CSS px,
# and the page's side padding plus a scroll bar.
UI_HEIGHT = 150
UI_WIDTH = 40
MTURK_SUBMIT_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")


def get_rater(token):
    """The only way a view reaches a rater: an unknown token is a 404, never a hint."""
    rater = Rater.objects.select_related("campaign").filter(token=token).first()
    if rater is None:
        raise Http404("No such session.")
    return rater


def not_live(request, campaign, status=200):
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


def _trial_payload(rater, upcoming):
    """The current trial as the page needs it: an opaque image URL and its pixel size, no more.

    `upcoming`: the next pending trials, candidates loaded. None when every trial is answered.
    The following trial's image URL comes along for prefetch.
    """
    if not upcoming:
        return None
    trial = upcoming[0]
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
    rater = get_rater(token)
    campaign = rater.campaign
    if campaign.status != Campaign.LIVE:
        if rater.completed_at:
            return redirect("study:done", token=token)
        return not_live(request, campaign)
    upcoming = _upcoming(rater)
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
    return _render_trial(request, rater, _shown(upcoming))


def _upcoming(rater):
    """The current trial and the one after it (candidates loaded): what a trial page needs."""
    return list(rater.trials.pending().select_related("candidate")[:2])


def _shown(upcoming):
    """Mark the first of `upcoming` as shown (the page is about to show it); returns them all."""
    if upcoming:
        upcoming[0].mark_shown()
    return upcoming


def _render_trial(request, rater, upcoming, error=None, status=200):
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


@require_POST
def consent(request, token):
    rater = get_rater(token)
    if rater.campaign.status != Campaign.LIVE:
        return not_live(request, rater.campaign, status=409)
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
    rater = get_rater(token)
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
    rater = get_rater(token)
    Rater.objects.filter(pk=rater.pk, calibrated_at__isnull=True).update(
        calibrated_at=timezone.now()
    )
    return redirect("study:session", token=token)


class _PageReply:
    """How the vote view answers a plain form post (no JavaScript): pages and redirects."""

    def __init__(self, request, rater):
        self.request, self.rater = request, rater

    def not_live(self):
        return not_live(self.request, self.rater.campaign, status=409)

    def not_started(self):
        return redirect("study:session", token=self.rater.token)

    def refused(self, message, status):
        """The trial page again with the reason a vote was not taken."""
        upcoming = _upcoming(self.rater)
        if not upcoming:
            return redirect("study:done", token=self.rater.token)
        return _render_trial(
            self.request, self.rater, _shown(upcoming), error=message, status=status
        )

    def accepted(self, outcome, payload):
        return redirect("study:session", token=self.rater.token)


class _JsonReply:
    """How the vote view answers the rating page's script: JSON, with the next trial."""

    def __init__(self, request, rater):
        self.rater = rater

    def not_live(self):
        return JsonResponse({"error": "This study is not open."}, status=409)

    def not_started(self):
        return JsonResponse({"error": "Please start from your link.", "resync": True}, status=409)

    def refused(self, message, status):
        # A 409 means the page and the server disagree on the current image: the page reloads.
        return JsonResponse({"error": message, "resync": status == 409}, status=status)

    def accepted(self, outcome, payload):
        return JsonResponse(
            {
                "status": "stored" if outcome.stored else "duplicate",
                "next": payload,
                "done_url": reverse("study:done", args=[self.rater.token]),
            }
        )


@require_POST
def vote(request, token):
    rater = get_rater(token)
    as_json = "application/json" in request.headers.get("Accept", "")
    reply = (_JsonReply if as_json else _PageReply)(request, rater)
    if rater.campaign.status != Campaign.LIVE:
        return reply.not_live()
    if rater.consented_at is None:
        return reply.not_started()
    form = VoteForm(request.POST)
    if not form.is_valid():
        return reply.refused(" ".join(e for errors in form.errors.values() for e in errors), 400)
    data = form.cleaned_data
    try:
        # One transaction, one commit: the vote, the bookkeeping and the next trial's shown_at.
        with transaction.atomic():
            outcome = rater.cast_vote(data["position"], data["score"], data.get("duration_ms"))
            payload = _trial_payload(rater, _shown(outcome.upcoming)) if as_json else None
    except VoteRejected as exc:
        return reply.refused(str(exc), 409)
    return reply.accepted(outcome, payload)


@never_cache
def done(request, token):
    rater = get_rater(token)
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
