"""The images a rater sees, by opaque URLs: a trial's image by its place in the session, a
calibration image by its candidate's random public id. No file name, no method, no cache key
that says either."""

from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse

from study.models import Candidate, Trial
from study.rating.views import get_rater


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
    rater = get_rater(token)
    trial = (
        Trial.objects.filter(rater=rater, position=position, candidate__status=Candidate.DONE)
        .select_related("candidate")
        .first()
    )
    if trial is None or not trial.candidate.file:
        raise Http404("No such image.")
    return _png_response(trial.candidate)


def calibration_image(request, token, public_id):
    rater = get_rater(token)
    candidate = Candidate.objects.filter(
        public_id=public_id,
        campaign=rater.campaign,
        role=Candidate.CALIBRATION,
        status=Candidate.DONE,
    ).first()
    if candidate is None or not candidate.file:
        raise Http404("No such image.")
    return _png_response(candidate)
