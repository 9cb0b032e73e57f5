"""Cost per image of each panel metric, against PSNR + SSIM, on BSD100-size images.

The budget (issue 14): a paper-size campaign (1,128 candidates of Set5/Set14/BSD100 size, about
500x400 pixels on average) must cost the panel under 2x what PSNR + SSIM cost alone. Images are
the first BSD200 HR images of ../shared/data (481x321, as BSD100's) cropped to 480x320, against
their MATLAB-bicubic x4 reconstruction, crop 4; without shared data, scikit-image's coffee
(400x600). LPIPS and DISTS run on random VGG16-shaped weights (the cost is the same).

    python bench/bench_metric_panel.py              # 5 images, median of 5 runs each
    python bench/bench_metric_panel.py --images 20 --runs 3
    python bench/bench_metric_panel.py --threads 2   # torch's default here: compare

Prints one line per metric; never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def images(n: int):
    from sr_models.degrade import degrade, imresize
    from sr_models.io import read_rgb

    root = ROOT.parent / "shared" / "data" / "BSD200" / "HR"
    paths = sorted(root.glob("*.png"))[:n]
    if paths:
        hrs = [read_rgb(p) for p in paths]
        hrs = [hr[:320, :480] if hr.shape[0] < hr.shape[1] else hr[:480, :320] for hr in hrs]
        source = f"BSD200 ({len(hrs)} images, 480x320)"
    else:
        from skimage import data

        hrs, source = [data.coffee()], "scikit-image coffee (400x600; no shared data)"
    return [(hr, imresize(degrade(hr, 4, "matlab-bicubic"), 4)) for hr in hrs], source


def weight_files(root: Path) -> dict[str, Path]:
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    torch.save(make_layers(cfgs["D"]).state_dict(), root / "vgg16.pth")
    torch.save([torch.rand(1, c, 1, 1) for c in (64, 128, 256, 512, 512)], root / "lpips.pt")
    torch.save({k: torch.rand(1, 1475, 1, 1) for k in ("alpha", "beta")}, root / "dists.pt")
    torch.save((torch.randn(50), torch.rand(50, 36) * 2 - 1), root / "brisque.pt")
    return {
        k: root / f"{k}.pt" if k != "vgg16" else root / "vgg16.pth"
        for k in ("vgg16", "lpips", "dists", "brisque")
    }


def per_image_ms(fn, pairs, runs: int) -> float:
    """Median over runs of the mean time per image (one warm-up pass first)."""
    for hr, sr in pairs:
        fn(hr, sr)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for hr, sr in pairs:
            fn(hr, sr)
        times.append((time.perf_counter() - t0) / len(pairs))
    return 1000 * statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=5)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = p.parse_args()

    import torch

    from sr_models.metric_panel import DEFAULT_PANEL, METRICS, measure_pair
    from sr_models.metrics import psnr, ssim

    torch.set_num_threads(args.threads)
    pairs, source = images(args.images)
    print(
        f"{source}; {os.cpu_count()} CPUs, torch on {args.threads} thread(s), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    base = per_image_ms(lambda a, b: (psnr(a, b, 4), ssim(a, b, 4)), pairs, args.runs)
    print(f"{'psnr+ssim':>10}: {base:7.1f} ms/image  (budget for the panel: {2 * base:.1f} ms)")
    with tempfile.TemporaryDirectory() as tmp:
        weights = weight_files(Path(tmp))
        total = 0.0
        for name in METRICS:
            runs = args.runs if name not in ("lpips", "dists") else 1
            ms = per_image_ms(lambda a, b, n=name: measure_pair(a, b, [n], 4, weights), pairs, runs)
            total += ms
            print(f"{name:>10}: {ms:7.1f} ms/image  {ms / base:5.1f}x psnr+ssim")
        print(f"{'all':>10}: {total:7.1f} ms/image  {total / base:5.1f}x psnr+ssim")
        ms = per_image_ms(lambda a, b: measure_pair(a, b, DEFAULT_PANEL, 4), pairs, args.runs)
        print(
            f"{'default':>10}: {ms:7.1f} ms/image  {ms / base:5.1f}x psnr+ssim "
            f"({', '.join(DEFAULT_PANEL)}); 1,128 candidates: {1.128 * ms:.0f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
