"""A worker's local copy of a registered model file, filled from storage.

torch loads a model from a path, and object storage (S3) has no paths: a worker copies the file
from storage (`default_storage`, whatever it is) into `SRMOS_MODEL_FILE_CACHE`, named by its
sha256, and loads that. The copy is written under a temporary name and renamed once its hash
matches the registration's, so a worker killed mid-copy, or two processes filling the same file,
never leave a truncated model under the final name. The folder holds nothing else and may be
deleted at any time; the next load fills it again. No torch here.
"""

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

CHUNK = 1 << 20
# Paths whose content this process has hashed (path -> (size, mtime_ns) when hashed).
_verified = {}


class ModelFileMismatch(ValueError):
    """The stored file's content is not the one the registration names by its hash."""


def sha256_of(fileobj):
    digest = hashlib.sha256()
    for chunk in iter(lambda: fileobj.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def local_model_file(registration):
    """A local path holding the registration's file, copied from storage once per content.

    Raises FileNotFoundError when storage lacks the file and ModelFileMismatch when its
    content does not hash to ``registration.sha256``.
    """
    folder = Path(settings.SRMOS_MODEL_FILE_CACHE)
    # The suffix stays: the loader tells a .pt2 program or a .safetensors file by it.
    target = folder / f"{registration.sha256}{Path(registration.file).suffix}"
    if _intact(target, registration.sha256):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".partial-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, default_storage.open(registration.file, "rb") as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != registration.sha256:
            raise ModelFileMismatch(
                f"the stored model file {registration.file} does not match its registration "
                f"(sha256 {digest.hexdigest()[:12]}, registered {registration.sha256[:12]}): "
                "register the model again"
            )
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    stat = target.stat()
    _verified[target] = (stat.st_size, stat.st_mtime_ns)
    return target


def _intact(path, sha256):
    """Whether ``path`` holds the content named ``sha256``: hashed once per process, then
    trusted while its size and modification time stay the same."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    if _verified.get(path) == (stat.st_size, stat.st_mtime_ns):
        return True
    with path.open("rb") as fh:
        if sha256_of(fh) != sha256:
            path.unlink(missing_ok=True)  # damaged: filled again from storage
            return False
    _verified[path] = (stat.st_size, stat.st_mtime_ns)
    return True
