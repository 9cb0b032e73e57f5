"""The rater's session pages: welcome and consent, calibration, the current trial, done.

Each view reaches the rater through `get_rater` (an unknown token is a 404) and leaves the
decisions to the models (`Rater.stage`, `Rater.cast_vote`); no page names a method or an image.
"""

import json

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from study.models import Rater, consent_for_display, instructions_for, rater_url
from study.rating.access import get_rater, not_live, out_of_order
from study.rating.display import display_passed, render_display_check

MTURK_SUBMIT_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")


def home(request):
    return render(request, "study/home.html")


def healthz(request):
    """For load balancers and the vote benchmark's baseline: no database, no template."""
    return JsonResponse({"ok": True})


def trial_payload(rater, upcoming):
    """The current trial as the page needs it: an opaque image URL and its pixel size, no more.

    `upcoming`: the next pending trials, candidates loaded. None when every trial is answered.
    The following trial's image URL comes along for prefetch.
    """
    if not upcoming:
        return None
    trial = upcoming[0]
    total = rater.n_trials
    following = upcoming[1] if len(upcoming) > 1 else None
    payload = {
        "position": trial.position,
        "number": trial.position + 1,
        "total": total,
        "percent": round(100 * trial.position / total) if total else 0,
        "src": rater_url("study:image", rater.token, trial.position),
        "width": trial.candidate.width,
        "height": trial.candidate.height,
        "next_src": rater_url("study:image", rater.token, following.position)
        if following
        else None,
    }
    # The protocol's own images (a reference, a second version), by the trial's place too.
    payload.update(rater.campaign.kind.trial_payload(rater, trial, following))
    return payload


@never_cache
def session(request, token):
    """Each visit shows the first step this session has not done: consent, the display check
    (once per browser), calibration, then the current trial."""
    rater = get_rater(token)
    campaign = rater.campaign
    if not rater.is_open():
        if rater.completed_at:
            return redirect("study:done", token=token)
        return not_live(request, campaign)
    if rater.opened_at is None:
        rater.mark_opened()
    stage = rater.stage()
    if stage == Rater.DONE:
        return redirect("study:done", token=token)
    if stage == Rater.CONSENT:
        return render_welcome(request, rater)
    if stage == Rater.DISPLAY or not display_passed(request, rater):
        return render_display_check(request, rater)
    if stage == Rater.CALIBRATION:
        return _render_calibration(request, rater, campaign.calibration_trials())
    upcoming = upcoming_trials(rater)
    if not upcoming:
        return redirect("study:done", token=token)
    return render_trial(request, rater, hand_out(upcoming))


def render_welcome(request, rater, error=None, status=200):
    context = {
        "rater": rater,
        "campaign": rater.campaign,
        "consent": consent_for_display(rater.campaign),
        "instructions": instructions_for(rater.campaign),
        "protocol": rater.campaign.kind,
        "error": error,
    }
    return render(request, "study/welcome.html", context, status=status)


def upcoming_trials(rater):
    """The current trial and the one after it (candidates loaded): what a trial page needs."""
    return list(rater.trials.pending().select_related("candidate")[:2])


def hand_out(upcoming):
    """Hand the first of `upcoming` to the page: the protocol fixes what it chooses late (an
    active design's pairs, the next one's too, as the page prefetches its images), and the
    trial is marked shown (the vote floor counts from here). Returns them all."""
    if upcoming:
        upcoming[0].rater.campaign.kind.before_show(upcoming[0].rater, upcoming)
        upcoming[0].mark_shown()
    return upcoming


def render_trial(request, rater, upcoming, error=None, status=200):
    protocol = rater.campaign.kind
    ctx = {
        "rater": rater,
        "campaign": rater.campaign,
        "trial": trial_payload(rater, upcoming),
        "protocol": protocol,
        # The page's keyboard: each key the protocol names gives its answer.
        "keys_json": json.dumps({key: str(a.score) for a in protocol.answers() for key in a.keys}),
        "error": error,
        **protocol.trial_context(rater),
    }
    return render(request, protocol.trial_template, ctx, status=status)


def _render_calibration(request, rater, calibration):
    def src(candidate):
        return reverse("study:calibration_image", args=[rater.token, candidate.public_id])

    protocol = rater.campaign.kind
    items = [
        {
            "src": src(item["candidate"]),
            "width": item["candidate"].width,
            "height": item["candidate"].height,
            "label": protocol.calibration_label(item["score"]),
            "score": item["score"],
            "ref_src": src(item["reference"]) if item["reference"] else "",
        }
        for item in protocol.calibration_items(rater, calibration)
    ]
    context = {"rater": rater, "items": items, "protocol": protocol}
    return render(request, "study/calibration.html", context)


@require_POST
def consent(request, token):
    rater = get_rater(token)
    refused = out_of_order(request, rater, allowed=(Rater.CONSENT, Rater.DISPLAY))
    if refused:
        return refused
    if request.POST.get("consent") != "yes":
        return render_welcome(request, rater, "Please tick the box to give your consent.", 400)
    rater.give_consent(request.headers.get("User-Agent", ""))
    return redirect("study:session", token=token)


@require_POST
def calibration_done(request, token):
    rater = get_rater(token)
    refused = out_of_order(request, rater, allowed=(Rater.CALIBRATION,))
    if refused:
        return refused
    if not display_passed(request, rater):
        return redirect("study:session", token=token)
    rater.finish_calibration()
    return redirect("study:session", token=token)


@never_cache
def done(request, token):
    rater = get_rater(token)
    if rater.trials.pending().exists():
        return redirect("study:session", token=token)
    campaign = rater.campaign
    if rater.code_withheld():
        # Finished faster than the study allows (server clock): no code, no platform return.
        return render(request, "study/done.html", {"rater": rater, "withheld": True})
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
