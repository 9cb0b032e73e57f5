"""A database or broker outage answers the rater with 503 and Retry-After, never a 500 or a
traceback: the rating page keeps the score and sends it again, and a page request gets a small
page that reloads itself until the server is back.

Django turns an exception into a response where it is raised (a view, or a middleware such as
the session's), so an outer middleware never sees the exception itself. The
``got_request_exception`` signal does: it is sent for every uncaught exception while the
exception is being handled, with the request. The receiver marks the request, and
`OutageMiddleware`, outermost, swaps the error response of a marked rater request for the 503.
`server_error` (the project's handler500) does the same for a request whose mark came too late,
and otherwise answers as Django's default.
"""

import logging
import sys

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.views import defaults

log = logging.getLogger(__name__)

# How long the rater's page waits before it asks again (seconds).
RETRY_AFTER = 5
MESSAGE = "The study's server is briefly unavailable; your answers are kept. Retrying..."


def _outage_errors():
    errors = [OperationalError, InterfaceError]
    try:
        from kombu.exceptions import OperationalError as BrokerError

        errors.append(BrokerError)
    except ImportError:  # pragma: no cover - kombu comes with Celery
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover - the embedded default runs without redis
        pass
    return tuple(errors)


OUTAGE_ERRORS = _outage_errors()


def is_outage(exc):
    """Whether `exc` (or what it was raised from) is a lost database or broker connection."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OUTAGE_ERRORS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def is_rater_request(request):
    """A request for the rater's pages and votes (the `study` namespace), not the admin."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return match.namespace == "study"


def unavailable(request):
    """The 503 a rater sees during an outage: JSON for the rating page's script, else a calm
    page that reloads itself. Renders without the database (no request context)."""
    if "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"error": MESSAGE, "retry": True}, status=503)
    else:
        context = {"retry_after": RETRY_AFTER, "url": _retry_url(request)}
        response = HttpResponse(render_to_string("study/reconnecting.html", context), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    response["Cache-Control"] = "no-store"
    return response


def _retry_url(request):
    """Where the page's own reload goes: the same page, or after a form's post (consent, the
    display check) the session's page, which shows whatever step comes next."""
    if request.method in ("GET", "HEAD"):
        return request.get_full_path()
    try:
        token = resolve(request.path_info).kwargs.get("token")
        return reverse("study:session", args=[token]) if token else request.path
    except (Resolver404, NoReverseMatch):
        return request.path


def _mark_outage(sender, request=None, **kwargs):
    exc = sys.exc_info()[1]
    if request is not None and is_outage(exc):
        request.srmos_outage = True


got_request_exception.connect(_mark_outage, dispatch_uid="srmos-outage")


class OutageMiddleware:
    """Outermost: a rater request that failed on a lost database or broker connection is
    answered with 503 and Retry-After instead of the error page (or the debug traceback)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "srmos_outage", False) and is_rater_request(request):
            log.warning("database or broker unavailable: answered %s with 503", request.path)
            return unavailable(request)
        return response


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    """handler500: the 503 for a rater request during an outage, else Django's own page."""
    if is_outage(sys.exc_info()[1]) and is_rater_request(request):
        return unavailable(request)
    return defaults.server_error(request, template_name)
