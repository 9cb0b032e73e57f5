"""Turn (source image, method) into candidate PNGs with their PSNR/SSIM. No ORM writes here.

Workers only: this module imports torch (through `sr_models`); the web process never loads it.

`render_candidates` takes candidates of one campaign and one method and runs the method once
over all of them: equal-size inputs go through a network together (`upscale_batch`), and the
model itself is loaded once per worker process (`sr_models.methods` caches it).
"""

import functools
import io
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from sr_models.atomic import human_size
from sr_models.degrade import modcrop
from sr_models.methods import get_method
from sr_models.metric_panel import MetricFailure, measure_pair
from sr_models.metrics import psnr, ssim
from study.generation import networks
from study.generation.inputs import hr_for, lr_input, read_png
from study.models import Candidate, ImportedResult, Method
from study.storage import DiskFull

log = logging.getLogger(__name__)
FINISH_THREADS = min(os.cpu_count() or 1, 8)


@dataclass(frozen=True)
class Rendered:
    path: str
    width: int
    height: int
    psnr: float
    ssim: float
    seconds: float = 0.0
    notes: str = ""
    metrics: dict = field(default_factory=dict)
    metric_notes: dict = field(default_factory=dict)


@dataclass
class _Job:
    candidate: Candidate
    hr: np.ndarray
    lr: np.ndarray | None
    notes: str


def encode_png(array):
    # Pillow writes no text chunks unless asked: the file carries no name or method.
    # zlib level 1: a 256x256 candidate encodes in 4 ms instead of Pillow's default 17 ms for a
    # file about 10% larger (docs/benchmarks.md); that was the largest CPU cost after inference.
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


@functools.cache
def _device_note(name):
    import torch

    if torch.cuda.is_available():
        log.info("%s runs on CUDA (%s)", name, torch.cuda.get_device_name(0))
        return "cuda"
    log.warning("%s: no CUDA device in this worker; falling back to the CPU (slow)", name)
    return "cpu"


def _prepare(candidate):
    """HR (modcropped to the scale) and the LR input the method gets, with what was changed."""
    campaign = candidate.campaign
    hr, note = hr_for(candidate.image, campaign.scale)
    lr = None
    if candidate.method.kind in (Method.INTERPOLATION, Method.NETWORK):
        lr = lr_input(campaign, candidate.image, hr)
    return _Job(candidate, hr, lr, note)


def _imported(candidate, hr):
    result = ImportedResult.objects.filter(method=candidate.method, image=candidate.image).first()
    if result is None:
        raise ValueError(f"{candidate.method.slug} has no imported result for {candidate.image}")
    sr = read_png(result.file.name)
    if sr.shape != hr.shape:
        # A result made from an uncropped HR: crop it the same way.
        sr = modcrop(sr, candidate.campaign.scale)
    return sr


def upscale_all(method, jobs, scale):
    """The SR image of each job, in order; one method call for the whole group."""
    if method.kind == Method.REFERENCE:
        return [job.hr for job in jobs]
    if method.kind == Method.IMPORTED:
        return [_imported(job.candidate, job.hr) for job in jobs]
    if method.kind == Method.NETWORK and hasattr(method, "registration"):
        _device_note(method.slug)
        return networks.upscale(method, [job.lr for job in jobs], scale)
    if method.kind in (Method.INTERPOLATION, Method.NETWORK):
        sr_method = get_method(method.sr_method, scale=scale)
        if sr_method.kind == "network":
            _device_note(method.sr_method)
        return sr_method.upscale_batch([job.lr for job in jobs])
    raise ValueError(f"method {method.slug}: kind {method.kind!r} cannot be generated here")


def store(candidate, sr):
    """Write the candidate's PNG at its fixed path, whole or not at all (`study.storage`)."""
    path = candidate.output_path()
    png = ContentFile(encode_png(sr))
    if default_storage.exists(path):
        default_storage.delete(path)
    saved = default_storage.save(path, png)
    if saved != path:
        # Another attempt wrote the same file at the same moment; keep only the deterministic one.
        default_storage.delete(saved)
        raise FileExistsError(f"{path} was being written by another attempt")
    return saved


def render_candidates(candidates):
    """Make each candidate (all of one campaign and one method).

    Returns one `Rendered` or one exception per candidate, in order: a bad image fails its own
    candidate, a failing method fails the whole group.
    """
    start = time.perf_counter()
    results = [None] * len(candidates)
    jobs, slots = [], []
    for i, candidate in enumerate(candidates):
        try:
            jobs.append(_prepare(candidate))
            slots.append(i)
        except Exception as exc:
            results[i] = exc
    if not jobs:
        return results
    method = candidates[0].method
    scale = candidates[0].campaign.scale
    try:
        outputs = upscale_all(method, jobs, scale)
    except Exception as exc:
        for i in slots:
            results[i] = exc
        return results
    shared = (time.perf_counter() - start) / len(jobs)

    def finish(pair):
        job, sr = pair
        t0 = time.perf_counter()
        try:
            rendered = _finish(job, sr, scale)
        except Exception as exc:
            return exc
        return _with_seconds(rendered, shared + time.perf_counter() - t0)

    # PNG coding and SSIM are most of a batch's CPU time (docs/benchmarks.md); zlib and numpy
    # release the GIL, so a GPU worker's batch finishes on several cores.
    pairs = list(zip(jobs, outputs, strict=True))
    if len(pairs) > 1:
        with ThreadPoolExecutor(
            max_workers=min(len(pairs), FINISH_THREADS), initializer=_one_torch_thread
        ) as pool:
            finished = list(pool.map(finish, pairs))
    else:
        finished = [finish(pair) for pair in pairs]
    for i, result in zip(slots, finished, strict=True):
        results[i] = (
            _advise(result, candidates[0].campaign) if isinstance(result, DiskFull) else result
        )
    return results


def _advise(full, campaign):
    """A full disk, in the campaign's terms: how much its unmade candidates need, what to press.

    Counted here, in the task's thread: the finishing threads make no queries (each would hold a
    database connection of its own)."""
    left = campaign.candidates.exclude(status=Candidate.DONE).count()
    each = full.size or 0
    return full.advise(
        needed=max(left, 1) * each,
        why=f"{left} candidate(s) of campaign {campaign.name} are not made yet, "
        f"about {human_size(each)} each",
        resume="press Retry failed on the campaign's page",
    )


def _one_torch_thread():
    # The metrics run torch ops in each finishing thread: one OpenMP thread apiece, or the
    # threads oversubscribe the cores (HaarPSI 14 ms an image alone, 770 ms oversubscribed).
    # Thread-local: the worker's inference keeps all its threads.
    import torch

    torch.set_num_threads(1)


def _finish(job, sr, scale):
    hr = job.hr
    if sr.shape != hr.shape:
        raise ValueError(f"{job.candidate.method.slug} returned {sr.shape}, expected {hr.shape}")
    path = store(job.candidate, sr)
    # A network's candidates get their metrics on the CPU queue afterwards (tasks.py): the GPU
    # worker goes on to its next batch.
    names = [] if job.candidate.method.kind == Method.NETWORK else job.candidate.campaign.metrics
    values, notes = measure(hr, sr, names, scale)
    return Rendered(
        path=path,
        width=sr.shape[1],
        height=sr.shape[0],
        psnr=psnr(hr, sr, crop_border=scale, y_channel=True),
        ssim=ssim(hr, sr, crop_border=scale, y_channel=True),
        notes=job.notes,
        metrics=values,
        metric_notes=notes,
    )


def measure(hr, sr, names, scale):
    """The campaign's other metrics of one candidate: (name -> value, name -> why missing).

    A metric that fails on this image is missing with its reason; the others are kept."""
    if not names:
        return {}, {}
    results = measure_pair(hr, sr, names, crop_border=scale, weights=settings.SRMOS_METRIC_WEIGHTS)
    values = {k: v for k, v in results.items() if not isinstance(v, MetricFailure)}
    notes = {k: v.reason for k, v in results.items() if isinstance(v, MetricFailure)}
    return values, notes


def measure_stored(candidate, names):
    """Metrics `names` of a made candidate from its stored PNG (a metric added afterwards)."""
    hr, _ = hr_for(candidate.image, candidate.campaign.scale)
    sr = read_png(candidate.file.name)
    if sr.shape != hr.shape:
        raise ValueError(f"stored image is {sr.shape}, its HR {hr.shape}: generate it again")
    return measure(hr, sr, names, candidate.campaign.scale)


def _with_seconds(rendered, seconds):
    return Rendered(**{**rendered.__dict__, "seconds": seconds})
