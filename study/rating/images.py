"""The images a rater sees, by opaque URLs: a trial's image by its place in the session, a
calibration image by its candidate's random public id. No file name, no method, no cache key
that says either.

A serving window: only the current trial's image and the next one (the page prefetches it)
are served, and only while the session is at its trials; calibration images only while it is
at calibration. Every other request is a 404, so a session cannot be downloaded ahead and
ranked by file size (docs/integrity.md says which side channel remains).
"""

from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse

from study.models import Candidate, Method, Rater
from study.rating.access import get_rater
from study.rating.padding import blinded_bytes


def _read(name):
    # Streamed through this server from any storage, never a storage URL: a bucket URL would
    # name the file, serve the same bytes every time and outlive the serving window. Object
    # storage reads the file in one request (study.storage_s3).
    if hasattr(default_storage, "read_bytes"):
        return default_storage.read_bytes(name)
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def _png_response(candidate):
    try:
        data = _read(candidate.file.name)
    except FileNotFoundError:
        raise Http404("No such image.") from None
    # Plain bytes: no file name or Content-Disposition, nothing but "a PNG" of the same length
    # as every other version of its source image, and never twice the same bytes.
    response = HttpResponse(blinded_bytes(candidate, data), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


# The current trial and the one after it: what the page shows and prefetches.
WINDOW = 2


def _in_step(rater, step):
    return rater.is_open() and rater.stage() == step


def trial_image(request, token, position):
    """A trial's image by its place in the rater's session: the URL says nothing of the
    candidate, so a retest showing looks like any other image."""
    rater = get_rater(token)
    if not _in_step(rater, Rater.TRIALS):
        raise Http404("No such image.")
    window = rater.trials.pending().select_related("candidate")[:WINDOW]
    trial = next((t for t in window if t.position == position), None)
    if trial is None or trial.candidate.status != Candidate.DONE or not trial.candidate.file:
        raise Http404("No such image.")
    return _png_response(trial.candidate)


def reference_image(request, token, position):
    """DCR: the HR reference of a trial's image, by the trial's place, within the same window
    as the trial images (the current trial and the next)."""
    rater = get_rater(token)
    if not rater.campaign.kind.serves_reference() or not _in_step(rater, Rater.TRIALS):
        raise Http404("No such image.")
    window = rater.trials.pending().select_related("candidate")[:WINDOW]
    trial = next((t for t in window if t.position == position), None)
    if trial is None:
        raise Http404("No such image.")
    reference = Candidate.objects.filter(
        campaign=rater.campaign,
        image_id=trial.candidate.image_id,
        role=Candidate.RATING,
        method__kind=Method.REFERENCE,
        status=Candidate.DONE,
    ).first()
    if reference is None or not reference.file:
        raise Http404("No such image.")
    return _png_response(reference)


def partner_image(request, token, position):
    """Paired comparison: the second image (B) of a trial, by the trial's place, within the
    same window as the first."""
    rater = get_rater(token)
    if not _in_step(rater, Rater.TRIALS):
        raise Http404("No such image.")
    window = rater.trials.pending().select_related("partner")[:WINDOW]
    trial = next((t for t in window if t.position == position), None)
    if trial is None or trial.partner is None or not trial.partner.file:
        raise Http404("No such image.")
    return _png_response(trial.partner)


def calibration_image(request, token, public_id):
    rater = get_rater(token)
    if not _in_step(rater, Rater.CALIBRATION):
        raise Http404("No such image.")
    candidate = Candidate.objects.filter(
        public_id=public_id,
        campaign=rater.campaign,
        role=Candidate.CALIBRATION,
        status=Candidate.DONE,
    ).first()
    if candidate is None or not candidate.file:
        raise Http404("No such image.")
    return _png_response(candidate)
