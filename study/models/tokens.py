"""Random tokens: the secrets in rater links and image URLs (migrations name these functions)."""

import secrets


def public_id():
    # 128 random bits: an image URL says nothing of the method and cannot be guessed.
    return secrets.token_urlsafe(16)


def rater_token():
    return secrets.token_urlsafe(24)


def completion_code():
    return secrets.token_hex(4).upper()
