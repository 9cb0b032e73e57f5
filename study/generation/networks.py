"""Researchers' own networks on the workers: validation at registration and upscaling for
generation. Workers only: this module imports torch (through `sr_models`).

A registered model is loaded once per worker process and kept in `sr_models.model_cache`'s
least-recently-used cache under the budget `SRMOS_MODEL_CACHE_MB`, keyed by the file's hash, so a
campaign with ten models loads each once and never holds more than the budget. torch reads the
file from a local copy that the worker fills from storage (`study.generation.local_models`), so
workers need no disk shared with the web server: S3 storage works as a file system does.
"""

import functools
import logging

from django.conf import settings

from sr_models.errors import CheckpointError
from sr_models.external import load_model
from sr_models.inference import DEFAULT_TILE, upscale_with
from sr_models.model_cache import default_cache
from sr_models.validate import validate
from study.generation.local_models import ModelFileMismatch, local_model_file

log = logging.getLogger(__name__)


@functools.cache
def worker_device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load(registration, path=None):
    path = path or local_model_file(registration)
    return load_model(str(path), **registration.load_options())


def check(registration):
    """Load and validate a registration's file on this worker.

    Returns ``(findings, None)`` with what to store on the row, or ``(None, message)`` with why
    it is refused (one line per problem)."""
    try:
        local = str(local_model_file(registration))
    except FileNotFoundError:
        return None, f"the uploaded file ({registration.file}) is not in storage; upload it again"
    except ModelFileMismatch as exc:
        return None, str(exc)
    named = registration.original_name or registration.file

    def in_words(message):  # the file as the researcher named it, not a worker's copy of it
        return message.replace(local, named)

    try:
        loaded = _load(registration, local)
    except (CheckpointError, ValueError) as exc:
        return None, in_words(str(exc))
    device = worker_device()
    result = validate(
        loaded,
        registration.scale,
        device=device,
        memory_limit_bytes=settings.SRMOS_MODEL_MEMORY_MB * 2**20,
        tile=DEFAULT_TILE,
        check_half=registration.half_requested,
    )
    if not result.ok:
        return None, in_words("; ".join(result.problems))
    half_note = result.half_note
    if registration.half_requested and device != "cuda":
        half_note = (
            f"{half_note} Half precision is used on GPU workers only; this check ran on the CPU."
        ).strip()
    return {
        "architecture": result.architecture,
        "parameter_count": result.parameters,
        "detected_route": loaded.route,
        "half_ok": result.half_ok,
        "half_note": half_note,
        "peak_memory_mb": (
            None if result.peak_memory_bytes is None else result.peak_memory_bytes / 2**20
        ),
        "validation_seconds": result.seconds,
    }, None


def upscale(method, images, scale):
    """Upscale LR images with a registered method's network (loaded once per process)."""
    registration = method.registration
    device = worker_device()
    key = (registration.sha256, registration.pk, device)
    loaded = default_cache().get(key, lambda: _load(registration))
    half = bool(method.parameters.get("half")) and device == "cuda"
    return upscale_with(
        loaded,
        images,
        scale,
        device,
        tile=DEFAULT_TILE,
        half=half,
        batch_size=settings.SRMOS_GPU_BATCH,
    )
