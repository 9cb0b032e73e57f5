"""Image files in and out: RGB uint8 arrays, PNG without metadata, one-line errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sr_models.atomic import write_bytes
from sr_models.errors import ImageError

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")

# Modes that read_rgb converts losslessly without asking (a palette without transparency).
_LOSSLESS = {"P"}


def _describe(mode: str) -> str:
    return {
        "L": "grey",
        "LA": "grey with alpha",
        "1": "1-bit",
        "I": "32-bit grey",
        "F": "float grey",
        "I;16": "16-bit grey",
        "RGBA": "RGBA",
        "P": "palette",
        "PA": "palette with alpha",
        "CMYK": "CMYK",
        "YCbCr": "YCbCr",
        "LAB": "Lab",
        "HSV": "HSV",
    }.get(mode, mode)


def read_rgb_report(path: str | Path) -> tuple[np.ndarray, str | None]:
    """Read any image as RGB uint8 (HxWx3) and say what was converted.

    Returns:
        (image, converted): `converted` is None for an RGB file, else a short description of the
        conversion (e.g. "grey (L) -> RGB", "RGBA -> RGB (alpha over white)") to report.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "RGB":
                return np.asarray(im, dtype=np.uint8).copy(), None
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16/32-bit grey: keep the top 8 bits of a 16-bit range.
                arr = np.asarray(im, dtype=np.float64)
                arr = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
                return np.repeat(arr[..., None], 3, axis=2), f"{_describe(mode)} ({mode}) -> RGB"
            has_alpha = mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            if has_alpha:
                rgba = im.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                rgb = Image.alpha_composite(background, rgba).convert("RGB")
                note = f"{_describe(mode)} ({mode}) -> RGB (alpha over white)"
            else:
                rgb = im.convert("RGB")
                note = f"{_describe(mode)} ({mode}) -> RGB"
            return np.asarray(rgb, dtype=np.uint8).copy(), note
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image file") from None
    except (UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(
            f"{path}: not a readable image ({type(exc).__name__}); give a PNG/BMP/JPEG file"
        ) from None
    except OSError as exc:
        raise ImageError(
            f"{path}: corrupt or truncated image ({exc}); re-export or re-download the file"
        ) from None


def read_rgb(path: str | Path, convert: bool = False) -> np.ndarray:
    """Read an image file as RGB uint8, HxWx3.

    Args:
        path: image file.
        convert: convert grey, RGBA, CMYK, 16-bit... files to RGB; with False (the default) such a
            file raises `ImageError` naming the file and the fix. A palette file without
            transparency is converted losslessly in both cases.
    Raises:
        ImageError (a ValueError): unreadable, corrupt, non-image, or (convert=False) non-RGB.
    """
    img, note = read_rgb_report(path)
    if note is not None and not convert:
        with Image.open(path) as im:
            mode = im.mode
        if mode not in _LOSSLESS or "transparency" in im.info:
            raise ImageError(
                f"{path}: image is {_describe(mode)} ({mode}), not RGB; convert it to 8-bit RGB "
                "(or pass convert=True / --convert to convert it on reading)"
            )
    return img


def write_png(path: str | Path, img: np.ndarray) -> None:
    """Write an RGB (HxWx3) or grey (HxW) uint8 array as PNG, with no metadata chunks.

    The file appears whole or not at all (`sr_models.atomic`); a full disk raises `DiskFull`
    naming the folder and the space needed."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"{path}: expected a uint8 image, got {img.dtype}")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"{path}: expected HxW or HxWx3, got shape {img.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder (not recursive), sorted by name; ImageError if none or missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a directory; give a folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ImageError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return paths
