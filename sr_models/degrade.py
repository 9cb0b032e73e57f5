"""Degradation: MATLAB-compatible `imresize` (bicubic, antialiased), modcrop, named kernels.

`imresize` is a numpy port of MATLAB's `imresize(..., 'bicubic')` (Image Processing Toolbox):
cubic kernel with a = -0.5, widened by 1/scale when shrinking (antialiasing), symmetric
(mirror) boundary indices, dimensions resized in order of increasing scale, and on uint8 input
each pass rounded and saturated to uint8, as MATLAB's `imresizemex` returns the input class.

Command line::

    python -m sr_models.degrade --kernel matlab-bicubic --scale 4 --in-dir HR --out-dir LR
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

KERNELS = ("matlab-bicubic", "pil-bicubic")


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of `scale`."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale, ...]


def _cubic(x: np.ndarray) -> np.ndarray:
    # Keys' cubic convolution kernel with a = -0.5 (MATLAB's `cubic`).
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2
    ) * ((absx > 1) & (absx <= 2))


def _contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based source indices, shape (out_length, P); MATLAB's `contributions`."""
    kernel_width = 4.0
    if scale < 1 and antialiasing:

        def kernel(x):
            return scale * _cubic(scale * x)

        kernel_width = kernel_width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    # Output pixel x maps to u in input space (1-based), pixel centres aligned.
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(p, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric padding: MATLAB's aux = [1:in_length, in_length:-1:1].
    aux = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = aux[np.mod(indices.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_along(img: np.ndarray, dim: int, weights: np.ndarray, indices: np.ndarray):
    moved = np.moveaxis(img, dim, 0).astype(np.float64)
    # out[i] = sum_k weights[i, k] * in[indices[i, k]]
    gathered = moved[indices]  # (out, P, ...)
    out = np.einsum("op,op...->o...", weights, gathered)
    if img.dtype == np.uint8:
        # MATLAB rounds half away from zero; values are non-negative after clipping.
        out = np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8)
    return np.moveaxis(out, 0, dim)


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> np.ndarray:
    """Resize like MATLAB `imresize(img, scale | [h w], 'bicubic')`.

    Args:
        img: HxW or HxWxC array, uint8 (rounded per pass, as MATLAB) or float (no rounding).
        scale: scale factor; the output size is ceil(scale * input size).
        output_shape: (height, width) instead of `scale`.
        antialiasing: widen the kernel by 1/scale when shrinking (MATLAB's default: True).
    Returns:
        The resized array, same dtype as `img`.
    """
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC array, got shape {img.shape}")
    in_h, in_w = img.shape[:2]
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        out_h, out_w = math.ceil(scale * in_h), math.ceil(scale * in_w)
    else:
        out_h, out_w = (int(v) for v in output_shape)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"output_shape must be positive, got {output_shape}")
        scales = (out_h / in_h, out_w / in_w)
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"expected uint8 or float input, got {img.dtype}")
    out = img
    sizes = ((in_h, out_h), (in_w, out_w))
    # MATLAB resizes the dimension with the smallest scale first (stable sort).
    for dim in sorted((0, 1), key=lambda d: scales[d]):
        w, idx = _contributions(sizes[dim][0], sizes[dim][1], scales[dim], antialiasing)
        out = _resize_along(out, dim, w, idx)
    return out


def pil_bicubic(img: np.ndarray, output_shape: tuple[int, int]) -> np.ndarray:
    """Pillow's antialiased bicubic resize of a uint8 image (what the SRGAN release used)."""
    h, w = output_shape
    if img.ndim == 2:
        return np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BICUBIC))
    return np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(img[..., c])).resize(
                    (w, h), Image.Resampling.BICUBIC
                )
            )
            for c in range(img.shape[2])
        ],
        axis=2,
    )


def degrade(hr: np.ndarray, scale: int, kernel: str = "matlab-bicubic") -> np.ndarray:
    """Downscale an HR uint8 image by an integer `scale` with a named kernel.

    The HR size must be divisible by `scale` (apply `modcrop` first), so that
    `upscale(degrade(hr))` has exactly the HR size.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if not isinstance(scale, int | np.integer) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if hr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {hr.dtype}")
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(
            f"image size {w}x{h} is not divisible by scale {scale}; "
            f"modcrop it first (sr_models.degrade.modcrop) to {w - w % scale}x{h - h % scale}"
        )
    out_shape = (h // scale, w // scale)
    if kernel == "matlab-bicubic":
        return imresize(hr, output_shape=out_shape)
    return pil_bicubic(hr, out_shape)


def main(argv: list[str] | None = None) -> int:
    from sr_models.errors import ImageError
    from sr_models.io import list_images, read_rgb, write_png

    parser = argparse.ArgumentParser(
        prog="python -m sr_models.degrade", description="Make LR images from HR images."
    )
    parser.add_argument("--kernel", choices=KERNELS, default="matlab-bicubic")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--in-dir", required=True, type=Path)
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument(
        "--modcrop",
        action="store_true",
        help="crop HR images to a multiple of the scale first (reported per image)",
    )
    parser.add_argument(
        "--convert", action="store_true", help="convert grey/RGBA/palette images to RGB"
    )
    args = parser.parse_args(argv)
    try:
        paths = list_images(args.in_dir)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for path in paths:
            hr = read_rgb(path, convert=args.convert)
            h, w = hr.shape[:2]
            if args.modcrop:
                hr = modcrop(hr, args.scale)
                if hr.shape[:2] != (h, w):
                    print(f"{path.name}: modcrop {w}x{h} -> {hr.shape[1]}x{hr.shape[0]}")
            elif h % args.scale or w % args.scale:
                raise ImageError(
                    f"{path}: size {w}x{h} is not divisible by scale {args.scale}; "
                    "crop it or pass --modcrop"
                )
            lr = degrade(hr, args.scale, args.kernel)
            write_png(args.out_dir / f"{path.stem}.png", lr)
            print(f"{path.name}: {w}x{h} -> {lr.shape[1]}x{lr.shape[0]}")
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
