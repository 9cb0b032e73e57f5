"""Served images say nothing by their bytes: every version of one source image leaves the server
at the same length, and no two responses are byte-identical.

A PNG's length ranks the methods (nearest neighbour compresses to a third of any network's
output), and repeated bytes tell a script which trial is a retest. Each response therefore gets
one private ancillary chunk (``paDd``: decoders skip it, so the pixels are unchanged) of random
bytes, sized so the file reaches the campaign's length for that source image: the largest of its
versions plus room, rounded up to 4 KiB. docs/integrity.md says what remains (a script that
decodes the pixels).
"""

import os
import struct
import zlib

from django.core.cache import cache
from django.core.files.storage import default_storage

from study.models import Candidate

CHUNK = b"paDd"  # ancillary, private, safe to copy (PNG spec 5.4)
OVERHEAD = 12  # length, type and CRC of a chunk
ROUND = 4096
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def served_length(candidate):
    """The length every version of the candidate's source image is served at (cached)."""
    key = f"srmos-served-length-{candidate.campaign_id}-{candidate.image_id}"
    length = cache.get(key)
    if length is None:
        versions = Candidate.objects.filter(
            campaign_id=candidate.campaign_id, image_id=candidate.image_id, status=Candidate.DONE
        ).exclude(file="")
        sizes = []
        for version in versions:
            try:
                sizes.append(default_storage.size(version.file.name))
            except (FileNotFoundError, OSError):
                continue  # a file gone from storage is not served either (404)
        largest = max(sizes, default=0)
        length = -(-(largest + OVERHEAD + 1) // ROUND) * ROUND
        cache.set(key, length, timeout=24 * 3600)
    return length


def padded(data, length):
    """``data`` (a PNG) with a random chunk before IEND, ``length`` bytes long in all; unchanged
    if it is not a PNG ending in IEND or is already longer (a version added later: the cached
    length is then refreshed by the caller)."""
    room = length - len(data) - OVERHEAD
    if room < 0 or not data.endswith(IEND):
        return data
    body = os.urandom(room)
    chunk = struct.pack(">I", room) + CHUNK + body + struct.pack(">I", zlib.crc32(CHUNK + body))
    return data[: -len(IEND)] + chunk + IEND


def blinded_bytes(candidate, data):
    """The bytes a rater receives for ``candidate``'s file ``data``."""
    out = padded(data, served_length(candidate))
    if len(out) == len(data):  # longer than the cached length: a version was made since
        cache.delete(f"srmos-served-length-{candidate.campaign_id}-{candidate.image_id}")
        out = padded(data, served_length(candidate))
    return out
