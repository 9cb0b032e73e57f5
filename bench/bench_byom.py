"""A registered model through the worker against the same model alone: RRDBNet of ESRGAN's size.

    python bench/bench_byom.py [--images 12] [--size 256] [--blocks 23] [--half]

Saves a random-weight ESRGAN RRDBNet (64 filters, 23 blocks, x4: 16.7 M parameters, the size of
ESRGAN's released model) as a state dict, registers it as a researcher would (`add_method`'s
path: stored, checked by a real worker) and generates a campaign of `--images` crops with one
real `celery worker` (-c 1, every core). Model-only: `sr_models.external.upscale_with` on the
same LR inputs in this process, warm, measured before and after the end-to-end run and averaged
(a shared machine's load hits both alike). End to end: from `start_generation()` until the
campaign is ready, after a warm-up campaign has loaded the model into the worker. `--half` runs
it in half precision (GPU only). Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_generation import _wait, make_dataset, setup_django, start_workers, wait_ready


def save_rrdbnet(path: Path, blocks: int) -> int:
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(num_filters=64, num_blocks=blocks, scale=4)
    torch.save(net.state_dict(), path)
    return sum(p.numel() for p in net.parameters())


def lr_inputs():
    from sr_models.degrade import degrade
    from study.generation.inputs import read_source
    from study.models import SourceImage

    return [degrade(read_source(im), 4) for im in SourceImage.objects.filter(dataset__name="bench")]


def model_only(path: Path, lrs, half: bool) -> float:
    """Images per second of the model alone, loaded and run as the worker runs it (warm)."""
    from django.conf import settings

    from sr_models.external import load_model
    from sr_models.inference import DEFAULT_TILE, upscale_with
    from study.generation.networks import worker_device

    loaded = load_model(path)
    device = worker_device()

    def run(images):
        return upscale_with(
            loaded, images, 4, device, DEFAULT_TILE, half=half, batch_size=settings.SRMOS_GPU_BATCH
        )

    run(lrs[:1])
    t0 = time.perf_counter()
    run(lrs)
    return len(lrs) / (time.perf_counter() - t0)


def register(path: Path, half: bool):
    from django.db import transaction

    from study.generation import registering

    with transaction.atomic(), path.open("rb") as f:
        reg = registering.register(f, path.name, slug="esrgan-size", scale=4, half_requested=half)
    deadline = time.monotonic() + 900
    while not reg.settled and time.monotonic() < deadline:
        time.sleep(0.5)
        reg.refresh_from_db()
    if reg.status != reg.VALID:
        raise RuntimeError(f"registration not valid: {reg.status} {reg.error}")
    return reg


def campaign_rate(n: int) -> float:
    from study.generation.queue import start_generation
    from study.models import Campaign, Dataset, Method

    def campaign(name):
        c = Campaign.objects.create(name=f"{name}-{time.time_ns()}")
        c.datasets.set(Dataset.objects.filter(name="bench"))
        c.methods.set(Method.objects.filter(slug="esrgan-size"))
        return c

    warm = campaign("warm")  # loads the model in the worker, as a campaign's first batch does
    start_generation(warm)
    _wait(warm, 1800)
    timed = campaign("timed")
    t0 = time.perf_counter()
    start_generation(timed)
    _wait(timed, 3600)
    return n / (time.perf_counter() - t0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--size", type=int, default=256, help="HR side in pixels")
    parser.add_argument("--blocks", type=int, default=23, help="RRDB blocks (ESRGAN: 23)")
    parser.add_argument("--half", action="store_true", help="half precision (GPU workers)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="srmos-bench-byom-"))
    procs = []
    try:
        setup_django(tmp, "filesystem://")
        make_dataset(args.images, args.size)
        import torch

        path = tmp / "rrdbnet.pth"
        params = save_rrdbnet(path, args.blocks)
        cores = os.cpu_count() or 1
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        print(
            f"# {platform.processor() or platform.machine()}, {cores} cores, CUDA: {device}; "
            f"RRDBNet {args.blocks} blocks, {params:,} parameters, x4; {args.images} images "
            f"{args.size}x{args.size} HR; half precision: {args.half}"
        )
        lrs = lr_inputs()
        procs = start_workers(1, tmp, cores)
        wait_ready()
        t0 = time.perf_counter()
        reg = register(path, args.half)
        print(
            f"registration: {time.perf_counter() - t0:.1f} s (worker's check "
            f"{reg.validation_seconds:.1f} s, peak {reg.peak_memory_mb:.0f} MiB per tile)"
        )
        before = model_only(path, lrs, args.half)
        e2e = campaign_rate(args.images)
        after = model_only(path, lrs, args.half)
        model = (before + after) / 2
        print(
            f"model only {model:.3f} images/s (before {before:.3f}, after {after:.3f}); "
            f"through the worker {e2e:.3f} candidates/s = {e2e / model:.0%} of model-only"
        )
    except RuntimeError:
        for _, log in procs:
            print(f"--- {log}:\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
