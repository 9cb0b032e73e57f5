"""PSNR/SSIM of a folder of SR images against their HR images, matched by name stem.

    python -m sr_models.evaluate --hr-dir HR --sr-dir SR --scale 4 [--json]

`baby_HR.png` matches `baby.png`, `baby_LR.png`, `baby_SRGAN-VGG54.png`: an SR file matches
the HR image whose stem (less an `_HR`/`_hr` suffix) is its stem or the longest prefix of it
followed by `_`. Y channel (MATLAB BT.601, rounded), `--scale` pixels cropped from each border
unless `--crop-border` says otherwise. Unmatched files and size mismatches are reported by
name and make the exit status 1. With --json, infinite PSNR (identical images) is null.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from sr_models.io import list_images, read_rgb
from sr_models.metrics import psnr, ssim

_HR_SUFFIX = re.compile(r"_(hr|HR)$")


def match_files(hr_paths: list[Path], sr_paths: list[Path]):
    """(pairs, unmatched_hr, unmatched_sr): pairs are (key, hr_path, sr_path)."""
    keys = {_HR_SUFFIX.sub("", p.stem): p for p in hr_paths}
    pairs, used, unmatched_sr = [], set(), []
    for sr in sr_paths:
        stem = _HR_SUFFIX.sub("", sr.stem)
        candidates = [k for k in keys if stem == k or stem.startswith(k + "_")]
        if not candidates:
            unmatched_sr.append(sr)
            continue
        key = max(candidates, key=len)
        if key in used:
            unmatched_sr.append(sr)  # a second SR file for the same HR image
            continue
        used.add(key)
        pairs.append((key, keys[key], sr))
    unmatched_hr = [p for k, p in keys.items() if k not in used]
    return sorted(pairs), unmatched_hr, unmatched_sr


def evaluate(hr_dir, sr_dir, crop_border: int, y_channel: bool = True, convert: bool = False):
    """Per-image results, mean and problems (strings naming files)."""
    pairs, unmatched_hr, unmatched_sr = match_files(list_images(hr_dir), list_images(sr_dir))
    problems = [f"{p}: no SR image matches this HR image" for p in unmatched_hr]
    problems += [f"{p}: matches no HR image (or a second SR file for one)" for p in unmatched_sr]
    images = []
    for key, hr_path, sr_path in pairs:
        hr, sr = read_rgb(hr_path, convert), read_rgb(sr_path, convert)
        if hr.shape != sr.shape:
            problems.append(
                f"{sr_path}: size {sr.shape[1]}x{sr.shape[0]} differs from {hr_path.name} "
                f"{hr.shape[1]}x{hr.shape[0]}; upscale by the right scale or modcrop the HR"
            )
            continue
        images.append(
            {
                "name": key,
                "hr": hr_path.name,
                "sr": sr_path.name,
                "psnr": psnr(hr, sr, crop_border, y_channel),
                "ssim": ssim(hr, sr, crop_border, y_channel),
            }
        )
    mean = {
        "psnr": float(np.mean([r["psnr"] for r in images])) if images else None,
        "ssim": float(np.mean([r["ssim"] for r in images])) if images else None,
    }
    return images, mean, problems


def _finite(x):
    return None if x is None or math.isinf(x) else x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sr_models.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--hr-dir", required=True, type=Path)
    parser.add_argument("--sr-dir", required=True, type=Path)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--crop-border", type=int, default=None, help="default: the scale")
    parser.add_argument("--rgb", action="store_true", help="measure on RGB instead of Y")
    parser.add_argument("--convert", action="store_true", help="accept grey/RGBA files")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    crop = args.scale if args.crop_border is None else args.crop_border
    try:
        images, mean, problems = evaluate(
            args.hr_dir, args.sr_dir, crop, not args.rgb, args.convert
        )
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if args.json:
        out = {
            "mean": {"psnr": _finite(mean["psnr"]), "ssim": mean["ssim"]},
            "images": [{**r, "psnr": _finite(r["psnr"])} for r in images],
            "problems": problems,
            "conventions": {
                "channel": "rgb" if args.rgb else "y-bt601-rounded",
                "crop_border": crop,
                "ssim": "wang2004-gaussian11-sigma1.5",
            },
        }
        print(json.dumps(out, indent=1))
    else:
        for r in images:
            print(f"{r['name']:<20} PSNR {r['psnr']:7.3f} dB  SSIM {r['ssim']:.4f}")
        if images:
            print(
                f"{'mean':<20} PSNR {mean['psnr']:7.3f} dB  SSIM {mean['ssim']:.4f}"
                f"  ({len(images)} images, crop {crop}, {'RGB' if args.rgb else 'Y'})"
            )
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    return 1 if problems or not images else 0


if __name__ == "__main__":
    sys.exit(main())
