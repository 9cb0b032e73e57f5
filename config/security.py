"""Site-wide protections that belong to no stage of the data path: the admin's login throttle
(django-axes) and the Content-Security-Policy header."""

from axes.backends import AxesStandaloneBackend
from django.conf import settings


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for logins that come through a web request.

    A login without a request (the test client's ``login()``, a shell) cannot be attributed to
    a client address, and axes refuses it outright; nobody can guess passwords that way, so it
    goes on to the next backend unthrottled.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request):
    """The client's address for the login throttle.

    Behind the TLS proxy every request comes from the proxy, so one attacker would lock every
    researcher out. The proxy appends the address it saw to X-Forwarded-For; the last entry is
    that one (earlier entries come from the client and can be forged).
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.BEHIND_TLS_PROXY and forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR")


def content_security_policy(directives):
    """The header value for a {directive: [sources]} mapping."""
    return "; ".join(f"{name} {' '.join(sources)}".strip() for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    """Adds ``settings.SRMOS_CSP`` as the Content-Security-Policy of every response (Django 5.2
    has none built in): scripts only from this site's own files, so a participant id or a
    dataset name that slipped through escaping still cannot run as a script."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = content_security_policy(settings.SRMOS_CSP)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.header)
        return response
