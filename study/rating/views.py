"""The rater's session pages: welcome and consent, calibration, the current trial, done.

Each view reaches the rater through `get_rater` (an unknown token is a 404) and leaves the
decisions to the models (`Rater.stage`, `Rater.cast_vote`); no page names a method or an image.
"""

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from study.models import Rater, consent_for_display
from study.models.texts import instructions_for
from study.rating.access import get_rater, not_live, out_of_order, scale_of
from study.rating.active import choose_pairs
from study.rating.display import current_pair_layout, display_passed, render_display_check

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
        "src": reverse("study:image", args=[rater.token, trial.position]),
        "width": trial.candidate.width,
        "height": trial.candidate.height,
        "next_src": reverse("study:image", args=[rater.token, following.position])
        if following
        else None,
    }
    if trial.partner_id is not None:
        # Paired comparison: the second version of the same image (B), by the trial's place.
        payload["partner_src"] = reverse("study:partner", args=[rater.token, trial.position])
        payload["partner_next_src"] = (
            reverse("study:partner", args=[rater.token, following.position])
            if following and following.partner_id
            else None
        )
    if rater.campaign.protocol == rater.campaign.DCR:
        # The HR reference beside the image, by the trial's place too: it names nothing either.
        payload["ref_src"] = reverse("study:reference", args=[rater.token, trial.position])
        payload["ref_next_src"] = (
            reverse("study:reference", args=[rater.token, following.position])
            if following
            else None
        )
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
        Rater.objects.filter(pk=rater.pk, opened_at__isnull=True).update(opened_at=timezone.now())
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
    return render_trial(request, rater, shown(upcoming))


def render_welcome(request, rater, error=None, status=200):
    context = {
        "rater": rater,
        "campaign": rater.campaign,
        "consent": consent_for_display(rater.campaign),
        "instructions": instructions_for(rater.campaign),
        "scale": scale_of(rater.campaign),
        "error": error,
    }
    return render(request, "study/welcome.html", context, status=status)


def upcoming_trials(rater):
    """The current trial and the one after it (candidates loaded): what a trial page needs."""
    return list(rater.trials.pending().select_related("candidate")[:2])


def shown(upcoming):
    """Mark the first of `upcoming` as shown (the page is about to show it); returns them all.

    An active paired design chooses their pairs first (the next one's too: the page prefetches
    its images, so its pair must not change afterwards)."""
    if upcoming:
        if upcoming[0].partner_id is not None:
            choose_pairs(upcoming[0].rater, upcoming)
        upcoming[0].mark_shown()
    return upcoming


def render_trial(request, rater, upcoming, error=None, status=200):
    ctx = {
        "rater": rater,
        "campaign": rater.campaign,
        "trial": trial_payload(rater, upcoming),
        "scale": scale_of(rater.campaign),
        "error": error,
    }
    if rater.campaign.protocol == rater.campaign.PC:
        ctx["pair_layout"] = current_pair_layout(rater)
        return render(request, "study/pair.html", ctx, status=status)
    return render(request, "study/trial.html", ctx, status=status)


def _render_calibration(request, rater, calibration):
    scale = dict(scale_of(rater.campaign))
    dcr = rater.campaign.protocol == rater.campaign.DCR
    # DCR: each example beside its reference, the same image's HR calibration candidate.
    references = {c.image_id: c for c, score in calibration if score == 5} if dcr else {}

    def src(candidate):
        return reverse("study:calibration_image", args=[rater.token, candidate.public_id])

    items = [
        {
            "src": src(c),
            "width": c.width,
            "height": c.height,
            "label": scale[score],
            "score": score,
            "ref_src": src(references[c.image_id]) if c.image_id in references else "",
        }
        for c, score in calibration
    ]
    paired = rater.campaign.protocol == rater.campaign.PC
    context = {"rater": rater, "items": items, "dcr": dcr, "paired": paired, "scale": scale}
    return render(request, "study/calibration.html", context)


@require_POST
def consent(request, token):
    rater = get_rater(token)
    refused = out_of_order(request, rater, allowed=(Rater.CONSENT, Rater.DISPLAY))
    if refused:
        return refused
    if request.POST.get("consent") != "yes":
        return render_welcome(request, rater, "Please tick the box to give your consent.", 400)
    Rater.objects.filter(pk=rater.pk, consented_at__isnull=True).update(
        consented_at=timezone.now(), user_agent=request.headers.get("User-Agent", "")[:500]
    )
    return redirect("study:session", token=token)


@require_POST
def calibration_done(request, token):
    rater = get_rater(token)
    refused = out_of_order(request, rater, allowed=(Rater.CALIBRATION,))
    if refused:
        return refused
    if not display_passed(request, rater):
        return redirect("study:session", token=token)
    Rater.objects.filter(pk=rater.pk, calibrated_at__isnull=True).update(
        calibrated_at=timezone.now()
    )
    return redirect("study:session", token=token)


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
