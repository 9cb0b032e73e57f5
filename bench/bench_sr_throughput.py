"""x4 inference throughput of every SR method on this machine, against its dense-conv limit.

    python bench/bench_sr_throughput.py [--threads 1] [--size 128] [--repeat 3]

Prints, per method, output megapixels per second for an LR image of --size x --size; the
GFLOP/s of one large 3x3 64->64 convolution (the machine's dense-convolution throughput, the
limit for SRResNet whose FLOPs are almost all such convolutions); SRResNet's achieved GFLOP/s
and its ratio to that limit; and training steps per second (batch 16, 96x96 HR crops).
Figures only: nothing here is asserted. Shipped checkpoints are used where present, else the
network is benchmarked with random weights (same cost).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, no install

from sr_models.checkpoint import build_generator
from sr_models.discriminator import Discriminator
from sr_models.inference import upscale_images
from sr_models.losses import adversarial_g_loss, discriminator_loss, mse_loss
from sr_models.methods import BUILTIN_METHODS, INTERPOLATIONS, get_method

ARCH = {"srcnn": "srcnn", "espcn": "espcn", "srresnet-mse": "srresnet", "srgan-mse": "srresnet"}


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up (allocations, oneDNN primitive caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def conv_flops(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs (2 x multiply-adds) of every Conv2d/Linear in one forward of `x`."""
    total = 0.0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            total += 2.0 * k * out.numel()
        elif isinstance(m, nn.Linear):
            total += 2.0 * m.in_features * out.numel()

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def network(name: str):
    try:
        return get_method(name, 4, "cpu").model
    except ValueError:
        model = build_generator(ARCH[name], {"scale": 4}).eval()
        return model.to(memory_format=torch.channels_last)


def conv_limit(repeat: int) -> float:
    conv = nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 64, 256, 256).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        t = best_time(lambda: conv(x), repeat)
        y = conv(x)  # noqa: F841 (alive while the huge pages are counted)
        print(f"{'huge pages':<16} {huge_pages_in_use()} in use with the 2 x 16 MB maps alive")
    return 2.0 * 64 * 64 * 9 * 256 * 256 / t / 1e9


def huge_pages_in_use() -> str:
    """AnonHugePages of this process (Linux): whether torch's buffers really got huge pages."""
    try:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("AnonHugePages:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def train_steps_per_s(gan: bool, steps: int, bf16: bool, patch: int = 96) -> float:
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    gen = build_generator("srresnet", {"scale": 4}).train().to(memory_format=fmt)
    opt = torch.optim.Adam(gen.parameters(), 1e-4)
    disc = Discriminator().train().to(memory_format=fmt) if gan else None
    opt_d = torch.optim.Adam(disc.parameters(), 1e-4) if gan else None
    lr = torch.rand(16, 3, patch // 4, patch // 4).contiguous(memory_format=fmt)
    hr = (torch.rand(16, 3, patch, patch) * 2 - 1).contiguous(memory_format=fmt)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def step():
        with autocast():
            sr = gen(lr)
            fake = disc(sr) if gan else None
        loss = mse_loss(sr.float(), hr)
        if gan:
            loss = loss + 1e-3 * adversarial_g_loss(fake.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if gan:
            with autocast():
                real, fake = disc(hr), disc(sr.detach())
            d = discriminator_loss(real.float(), fake.float())
            opt_d.zero_grad()
            d.backward()
            opt_d.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=128, help="LR side (output is 4x)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {args.threads} thread(s), load average "
        f"{os.getloadavg()[0]:.2f}, CUDA {torch.cuda.is_available()}, "
        f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}"
    )
    lr = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    out_mp = (4 * args.size) ** 2 / 1e6
    limit = conv_limit(args.repeat)
    print(
        f"{'dense conv limit':<16} {limit:8.1f} GFLOP/s (3x3 64->64 conv on 256x256, channels_last)"
    )
    for name in BUILTIN_METHODS:
        if name in INTERPOLATIONS:
            method = get_method(name, 4)
            t = best_time(lambda m=method: m.upscale(lr), args.repeat)
            print(f"{name:<16} {out_mp / t:8.3f} output MP/s")
            continue
        model = network(name)
        t = best_time(lambda m=model: upscale_images(m, [lr], 4, tile=None), args.repeat)
        x = torch.rand(
            1,
            3,
            args.size * (4 if getattr(model, "upscales_input", False) else 1),
            args.size * (4 if getattr(model, "upscales_input", False) else 1),
        )
        # Useful work: the paper network's own conv FLOPs, not those of the faster rewritten
        # inference graph (whose sub-pixel tail multiplies some structural zeros).
        gflop = conv_flops(build_generator(ARCH[name], {"scale": 4}).eval(), x) / 1e9
        line = f"{name:<16} {out_mp / t:8.3f} output MP/s, {gflop / t:6.1f} GFLOP/s"
        if ARCH[name] == "srresnet":
            line += f" = {100 * gflop / t / limit:.0f}% of the dense-conv limit"
        print(line)
    for bf16 in (False, True) if args.train_steps > 0 else ():
        mode = "bf16 autocast, channels_last" if bf16 else "fp32, NCHW"
        for gan, label in ((False, "MSE"), (True, "MSE + 1e-3 adversarial, G and D")):
            rate = train_steps_per_s(gan, args.train_steps, bf16)
            name = "train srgan" if gan else "train srresnet"
            print(f"{name:<16} {rate:8.3f} steps/s ({label}; batch 16, 96x96 HR; {mode})")


if __name__ == "__main__":
    main()
