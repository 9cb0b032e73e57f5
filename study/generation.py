"""Turn (source image, method) into candidate PNGs with their PSNR/SSIM. No ORM writes here.

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
from django.db.models import Avg, Count, Max, Min, Q, Sum
from django.utils import timezone
from PIL import Image

from sr_models.degrade import degrade, modcrop
from sr_models.methods import get_method
from sr_models.metrics import psnr, ssim
from study.models import Candidate, ImportedResult, LowResImage, Method

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


@dataclass
class _Job:
    candidate: Candidate
    hr: np.ndarray
    lr: np.ndarray | None
    notes: str


def read_png(name):
    with default_storage.open(name, "rb") as fh:
        image = Image.open(fh)
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def read_source(image):
    return read_png(image.file.name)


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
    scale = campaign.scale
    raw = read_source(candidate.image)
    hr = modcrop(raw, scale)
    notes = []
    if hr.shape != raw.shape:
        notes.append(
            f"HR {raw.shape[1]}x{raw.shape[0]} modcropped to {hr.shape[1]}x{hr.shape[0]} for x{scale}"
        )
    lr = None
    if candidate.method.kind in (Method.INTERPOLATION, Method.NETWORK):
        lr = _lr_input(candidate, hr, scale)
    return _Job(candidate, hr, lr, "; ".join(notes))


def _lr_input(candidate, hr, scale):
    campaign = candidate.campaign
    if campaign.lr_source != campaign.LR_DATASET:
        return degrade(hr, scale, kernel=campaign.kernel)
    stored = LowResImage.objects.filter(image=candidate.image, scale=scale).first()
    if stored is None:
        raise ValueError(f"{candidate.image} has no LR image for x{scale} in its dataset")
    lr = read_png(stored.file.name)
    if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
        raise ValueError(
            f"LR {stored.original_name} is {lr.shape[1]}x{lr.shape[0]}: x{scale} is not the HR's "
            f"{hr.shape[1]}x{hr.shape[0]}"
        )
    return lr


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
    if method.kind in (Method.INTERPOLATION, Method.NETWORK):
        sr_method = get_method(method.sr_method, scale=scale)
        if sr_method.kind == "network":
            _device_note(method.sr_method)
        return sr_method.upscale_batch([job.lr for job in jobs])
    raise ValueError(f"method {method.slug}: kind {method.kind!r} cannot be generated here")


def store(candidate, sr):
    path = candidate.output_path()
    if default_storage.exists(path):
        default_storage.delete(path)
    saved = default_storage.save(path, ContentFile(encode_png(sr)))
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
        with ThreadPoolExecutor(max_workers=min(len(pairs), FINISH_THREADS)) as pool:
            finished = list(pool.map(finish, pairs))
    else:
        finished = [finish(pair) for pair in pairs]
    for i, result in zip(slots, finished, strict=True):
        results[i] = result
    return results


def _finish(job, sr, scale):
    hr = job.hr
    if sr.shape != hr.shape:
        raise ValueError(f"{job.candidate.method.slug} returned {sr.shape}, expected {hr.shape}")
    path = store(job.candidate, sr)
    return Rendered(
        path=path,
        width=sr.shape[1],
        height=sr.shape[0],
        psnr=psnr(hr, sr, crop_border=scale, y_channel=True),
        ssim=ssim(hr, sr, crop_border=scale, y_channel=True),
        notes=job.notes,
    )


def _with_seconds(rendered, seconds):
    return Rendered(**{**rendered.__dict__, "seconds": seconds})


def render_candidate(candidate):
    """One candidate; raises what made it fail."""
    (result,) = render_candidates([candidate])
    if isinstance(result, Exception):
        raise result
    return result


@dataclass
class MethodTime:
    method: str
    done: int
    mean_seconds: float | None
    total_seconds: float | None


@dataclass
class GenerationReport:
    counts: dict
    total: int
    methods: list = field(default_factory=list)
    eta_seconds: float | None = None
    failures: list = field(default_factory=list)
    abandoned: int = 0  # running, but their worker stopped renewing the lease
    live: int = 0  # running with a live lease: a worker is on them
    idle_seconds: float | None = None  # since work was queued, started or finished last

    @property
    def remaining(self):
        return self.counts[Candidate.QUEUED] + self.counts[Candidate.RUNNING]

    @property
    def idle(self) -> bool:
        """Candidates are queued, no worker holds one, and nothing moved for three leases."""
        limit = 3 * settings.SRMOS_GENERATION_LEASE
        return (
            bool(self.counts[Candidate.QUEUED])
            and not self.live
            and self.idle_seconds is not None
            and self.idle_seconds > limit
        )

    @property
    def stalled(self) -> bool:
        return bool(self.remaining) and (self.abandoned > 0 or self.idle)

    def stall_message(self) -> str:
        """What the researcher should know and do about a stall ("" when there is none)."""
        parts = []
        if self.abandoned:
            parts.append(f"{self.abandoned} candidate(s) lost their worker (it stopped mid-task)")
        if self.idle:
            parts.append(
                f"no candidate has been taken for {self.idle_seconds / 60:.0f} min while "
                f"{self.counts[Candidate.QUEUED]} are queued"
            )
        if not parts:
            return ""
        text = "; ".join(parts)
        return (
            text[:1].upper() + text[1:] + ". Check that a worker is running (`celery -A config "
            "worker`), then press Generate: it queues every waiting and abandoned candidate again "
            "(a broker that lost their messages, such as the embedded one, needs this)."
        )


def generation_report(campaign, max_failures=20):
    """Counts by state, time per method, an ETA, stalls and the first failures: five queries."""
    counts = campaign.progress()
    report = GenerationReport(counts=counts, total=sum(counts.values()))
    rows = (
        campaign.candidates.filter(status=Candidate.DONE)
        .values("method__slug")
        .annotate(n=Count("id"), mean=Avg("seconds"), total=Sum("seconds"))
        .order_by("method__slug")
    )
    report.methods = [MethodTime(r["method__slug"], r["n"], r["mean"], r["total"]) for r in rows]
    if report.remaining and counts[Candidate.DONE]:
        # Observed throughput of all workers together since the first candidate started.
        span = campaign.candidates.filter(status=Candidate.DONE).aggregate(
            first=Min("started_at"), last=Max("finished_at")
        )
        if span["first"]:
            elapsed = max((timezone.now() - span["first"]).total_seconds(), 1e-3)
            report.eta_seconds = report.remaining * elapsed / counts[Candidate.DONE]
    if report.remaining:
        now = timezone.now()
        activity = campaign.candidates.aggregate(
            started=Max("started_at"),
            finished=Max("finished_at"),
            abandoned=Count("id", filter=Candidate.abandoned(now)),
            live=Count("id", filter=Q(status=Candidate.RUNNING, lease_expires__gte=now)),
        )
        report.abandoned, report.live = activity["abandoned"], activity["live"]
        moments = (activity["started"], activity["finished"], campaign.generation_queued_at)
        last = max((t for t in moments if t), default=None)
        if last is not None:
            report.idle_seconds = (now - last).total_seconds()
    report.failures = list(
        campaign.candidates.filter(status=Candidate.FAILED)
        .values_list("image__dataset__name", "image__name", "method__slug", "error")
        .order_by("pk")[:max_failures]
    )
    return report
