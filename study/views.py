from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from study.forms import VoteForm
from study.models import Campaign, Rater, Trial, VoteRejected

SCALE = [(1, "Bad"), (2, "Poor"), (3, "Fair"), (4, "Good"), (5, "Excellent")]


def _get_rater(token):
    """The only way a view reaches a rater: an unknown token is a 404, never a hint."""
    rater = Rater.objects.select_related("campaign").filter(token=token).first()
    if rater is None:
        raise Http404("No such session.")
    return rater


def home(request):
    return render(request, "study/home.html")


def _render_trial(request, rater, trial, error=None, status=200):
    total = rater.trials.count()
    ctx = {
        "rater": rater,
        "trial": trial,
        "total": total,
        "number": trial.position + 1,
        "percent": round(100 * trial.position / total) if total else 0,
        "scale": SCALE,
        "error": error,
    }
    return render(request, "study/trial.html", ctx, status=status)


@never_cache
def session(request, token):
    rater = _get_rater(token)
    if rater.campaign.status != Campaign.LIVE:
        return render(request, "study/closed.html", {"campaign_status": rater.campaign.status})
    trial = rater.current_trial()
    if trial is None:
        return redirect("study:done", token=token)
    return _render_trial(request, rater, trial)


@require_POST
def vote(request, token):
    rater = _get_rater(token)
    if rater.campaign.status != Campaign.LIVE:
        return render(
            request, "study/closed.html", {"campaign_status": rater.campaign.status}, status=409
        )
    form = VoteForm(request.POST)
    trial = rater.current_trial()
    if trial is None:
        return redirect("study:done", token=token)
    if not form.is_valid():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        return _render_trial(request, rater, trial, error=message, status=400)
    try:
        rater.record_vote(form.cleaned_data["position"], form.cleaned_data["score"])
    except VoteRejected as exc:
        return _render_trial(request, rater, trial, error=str(exc), status=409)
    return redirect("study:session", token=token)


@never_cache
def done(request, token):
    rater = _get_rater(token)
    if rater.trials.pending().exists():
        return redirect("study:session", token=token)
    return render(request, "study/done.html", {"rater": rater})


def trial_image(request, token, public_id):
    rater = _get_rater(token)
    trial = (
        Trial.objects.filter(rater=rater, candidate__public_id=public_id)
        .select_related("candidate")
        .first()
    )
    if trial is None or not trial.candidate.file:
        raise Http404("No such image.")
    with default_storage.open(trial.candidate.file.name, "rb") as fh:
        data = fh.read()
    # Plain bytes: no file name or Content-Disposition, nothing but "a PNG".
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
