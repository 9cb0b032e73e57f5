"""Random tokens: the secrets in rater links and image URLs (migrations name these functions),
and the rater's URLs built from them."""

import re
import secrets

from django.urls import get_script_prefix, reverse


def public_id():
    # 128 random bits: an image URL says nothing of the method and cannot be guessed.
    return secrets.token_urlsafe(16)


def rater_token():
    return secrets.token_urlsafe(24)


def completion_code():
    return secrets.token_hex(4).upper()


def participant_key(participant_id):
    """One person's id however it is typed: case-folded, letters and digits only. Prolific's
    24 hex digits and MTurk's worker ids pass through unchanged but for case."""
    return "".join(ch for ch in participant_id.casefold() if ch.isalnum())


# Rater URLs by token: shapes reversed once per URL name and script prefix, then filled in.
_URL_SHAPES = {}
_TOKEN_MARK, _POSITION_MARK = "TOKENMARK", 987654321
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def rater_url(name, token, position=None):
    """``reverse(name, args=[token] or [token, position])`` for the rater's pages and images.

    Every vote's answer carries three of these URLs and reversing each took longer than the
    vote's update; the URL's shape is reversed once, then filled in. Tokens are URL-safe and
    positions whole numbers, so nothing needs quoting (anything else is reversed as usual)."""
    if not _URL_SAFE.fullmatch(token) or not (position is None or isinstance(position, int)):
        return reverse(name, args=[token] if position is None else [token, position])
    key = (name, position is None, get_script_prefix())
    shape = _URL_SHAPES.get(key)
    if shape is None:
        marks = [_TOKEN_MARK] if position is None else [_TOKEN_MARK, _POSITION_MARK]
        shape = _URL_SHAPES[key] = reverse(name, args=marks)
    if position is not None:
        shape = shape.replace(str(_POSITION_MARK), str(position))
    return shape.replace(_TOKEN_MARK, token)
