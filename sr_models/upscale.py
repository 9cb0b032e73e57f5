"""Upscale a folder of LR images with a built-in method or a checkpoint.

    python -m sr_models.upscale --method srresnet-mse --scale 4 --in-dir LR --out-dir SR
    python -m sr_models.upscale --checkpoint runs/x/last.pt --scale 4 --in-dir LR --out-dir SR

Outputs keep the input's name stem, as PNG. Errors are one line naming the file and the fix.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from sr_models.inference import DEFAULT_TILE
from sr_models.io import list_images, read_rgb_report, write_png
from sr_models.methods import BUILTIN_METHODS, SRMethod, get_method, method_from_checkpoint


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        method = _load_method(args)
        images = _read_images(list_images(args.in_dir), args.convert)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        _upscale_all(method, images, args.out_dir)
        print(f"{method.name} x{method.scale}: {len(images)} images in {time.time() - t0:.1f} s")
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    """The command line: one source (built-in method or checkpoint), folders, device, tiling."""
    parser = argparse.ArgumentParser(
        prog="python -m sr_models.upscale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--method", choices=BUILTIN_METHODS)
    source.add_argument("--checkpoint", type=Path, help="an sr_models checkpoint file")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--in-dir", required=True, type=Path)
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    parser.add_argument(
        "--tile", type=int, default=DEFAULT_TILE, help="LR tile side for networks; 0 = whole image"
    )
    parser.add_argument(
        "--convert",
        action="store_true",
        help="convert grey/RGBA images to RGB instead of refusing them",
    )
    return parser


def _load_method(args: argparse.Namespace) -> SRMethod:
    """The method to run, at ``--scale``; a checkpoint of another scale is refused."""
    if args.checkpoint:
        method = method_from_checkpoint(args.checkpoint, args.device)
        if method.scale != args.scale:
            raise ValueError(
                f"{args.checkpoint}: checkpoint is x{method.scale}; pass --scale {method.scale}"
            )
    else:
        method = get_method(args.method, args.scale, args.device)
    method.tile = args.tile or None
    return method


def _read_images(paths: list[Path], convert: bool) -> dict[Path, np.ndarray]:
    """Read every input as RGB; a grey or RGBA image is refused unless ``convert``."""
    images = {}
    for path in paths:
        img, note = read_rgb_report(path)
        if note is not None:
            if not convert:
                raise ValueError(
                    f"{path}: image is {note.split(' ->')[0]}, not RGB; "
                    "convert it to RGB or pass --convert"
                )
            print(f"{path.name}: converted {note}")
        images[path] = img
    return images


def _upscale_all(method: SRMethod, images: dict[Path, np.ndarray], out_dir: Path) -> None:
    """Upscale and write every image as ``out_dir/STEM.png``, printing each one's sizes."""
    # Batches must share a size, so same-size images go through the network together.
    by_size = defaultdict(list)
    for path, img in images.items():
        by_size[img.shape[:2]].append(path)
    for group in by_size.values():
        for path, sr in zip(group, method.upscale_batch([images[p] for p in group]), strict=True):
            write_png(out_dir / f"{path.stem}.png", sr)
            lr = images[path]
            print(f"{path.name}: {lr.shape[1]}x{lr.shape[0]} -> {sr.shape[1]}x{sr.shape[0]}")


if __name__ == "__main__":
    sys.exit(main())
