"""Random tokens: the secrets in rater links and image URLs (migrations name these functions)."""

import secrets


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
