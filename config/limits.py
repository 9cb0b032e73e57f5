"""The request body limit, checked before Django reads a byte of the body.

Django's DATA_UPLOAD_MAX_MEMORY_SIZE leaves file parts out, and FILE_UPLOAD_MAX_MEMORY_SIZE only
decides where they go: a multipart POST of any size to any page that reads `request.POST` (the
admin's login, CSRF middleware, a vote) is otherwise streamed to the temporary directory in full.
This middleware comes first and answers 413 instead:

- everyone gets SRMOS_MAX_REQUEST_MB (2 MB: a vote or a login is a few hundred bytes, and below
  FILE_UPLOAD_MAX_MEMORY_SIZE nothing of an accepted body is written to disk at all);
- an active staff user, on the admin's pages only, gets SRMOS_MAX_UPLOAD_MB for dataset and
  results zips and model checkpoints. The session is looked up only for a body that needs it.

A body sent chunked, without Content-Length, is read here up to the small limit, counting, and
handed on with its length; Django alone would read such a body as empty. The reverse proxy should
refuse too (`client_max_body_size`, docs/deployment.md), so a large body never reaches a worker.
"""

import io
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import reverse

CHUNK = 64 * 1024


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = _content_length(request)
        if declared is None:
            return HttpResponseBadRequest("Malformed Content-Length.\n", content_type="text/plain")
        if declared == 0 and "HTTP_TRANSFER_ENCODING" in request.META:
            refused = _take_chunked_body(request, settings.SRMOS_MAX_REQUEST_BYTES)
            if refused:
                return refused
        elif declared > settings.SRMOS_MAX_REQUEST_BYTES:
            limit = _upload_limit(request)
            if declared > limit:
                return _too_large(limit, f"{declared:,} bytes")
        return self.get_response(request)


def _content_length(request):
    """The declared length (0 when absent), or None when it is not a non-negative integer."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw)
    except ValueError:
        return None
    return length if length >= 0 else None


def _upload_limit(request):
    """The large limit for an active staff user on an admin page, else the small one."""
    small = settings.SRMOS_MAX_REQUEST_BYTES
    if not request.path.startswith(reverse("admin:index")):
        return small
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return small
    # SessionMiddleware and AuthenticationMiddleware have not run yet: read the session the way
    # they will, on a stand-in request, so nothing they set up later is disturbed.
    store = import_module(settings.SESSION_ENGINE).SessionStore(key)
    user = get_user(SimpleNamespace(session=store))
    return settings.SRMOS_MAX_UPLOAD_BYTES if user.is_active and user.is_staff else small


def _take_chunked_body(request, limit):
    """Read a body without Content-Length, at most `limit` bytes; a 413 when it is longer."""
    stream = request.META["wsgi.input"]
    body = io.BytesIO()
    while chunk := stream.read(min(CHUNK, limit + 1 - body.tell())):
        body.write(chunk)
        if body.tell() > limit:
            return _too_large(limit, "a chunked body")
    size = body.tell()
    body.seek(0)
    # WSGIRequest made its stream from a length of 0; give it the body that was read instead.
    request._stream = LimitedStream(body, size)
    request.META["CONTENT_LENGTH"] = str(size)
    return None


def _too_large(limit, what):
    return HttpResponse(
        f"Request body too large: {what}; the limit here is {limit / 2**20:g} MB.\n",
        status=413,
        content_type="text/plain; charset=utf-8",
    )
