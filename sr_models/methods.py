"""One interface for every SR method: `SRMethod.upscale(lr) -> sr`, RGB uint8 in and out,
output exactly `scale` x the input size.

    >>> method = get_method("bicubic", scale=4)
    >>> sr = method.upscale(lr)            # HxWx3 uint8 -> 4Hx4Wx3 uint8

Interpolation methods: nearest (pixel replication), bicubic (MATLAB `imresize`, the "bicubic"
row of SR tables), lanczos (Pillow Lanczos-3). Network methods load the shipped checkpoints
`sr_models/checkpoints/<name>_x<scale>.pt` once per process.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from sr_models.checkpoint import generator_from_checkpoint
from sr_models.degrade import imresize
from sr_models.errors import CheckpointError, ImageError
from sr_models.inference import DEFAULT_TILE, upscale_images

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
INTERPOLATIONS = ("nearest", "bicubic", "lanczos")
NETWORKS = ("srcnn", "espcn", "srresnet-mse", "srgan-mse")
BUILTIN_METHODS = INTERPOLATIONS + NETWORKS
_ARCH_OF = {"srcnn": "srcnn", "espcn": "espcn", "srresnet-mse": "srresnet", "srgan-mse": "srresnet"}


def _check_lr(lr: np.ndarray) -> np.ndarray:
    lr = np.asarray(lr)
    if lr.dtype != np.uint8 or lr.ndim != 3 or lr.shape[2] != 3:
        raise ImageError(
            f"expected an RGB uint8 HxWx3 image, got {lr.dtype} of shape {lr.shape}; "
            "read it with sr_models.io.read_rgb(path, convert=True)"
        )
    if min(lr.shape[:2]) < 1:
        raise ImageError(f"empty image of shape {lr.shape}")
    return lr


def _nearest(lr: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)


def _lanczos(lr: np.ndarray, scale: int) -> np.ndarray:
    h, w = lr.shape[:2]
    return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.Resampling.LANCZOS))


@dataclass
class SRMethod:
    """A named upscaler. `kind` is "interpolation" or "network"; `model` is None for the former.

    `upscale` and `upscale_batch` are safe to call from several threads (one lock per model).
    """

    name: str
    kind: str
    scale: int
    model: nn.Module | None = None
    device: torch.device | None = None
    tile: int | None = DEFAULT_TILE
    checkpoint: Path | None = None

    def __post_init__(self):
        self._lock = threading.Lock()

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> RGB uint8 (scale*H)x(scale*W)x3."""
        return self.upscale_batch([lr])[0]

    def upscale_batch(self, images: list[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """Upscale many images; networks run equal-size images together. Order is kept."""
        images = [_check_lr(im) for im in images]
        if self.kind == "interpolation":
            fn = {
                "nearest": _nearest,
                "bicubic": lambda im, s: imresize(im, s),
                "lanczos": _lanczos,
            }[self.name]
            return [fn(im, self.scale) for im in images]
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, im in enumerate(images):
            groups[im.shape[:2]].append(i)
        out: list[np.ndarray | None] = [None] * len(images)
        with self._lock:
            for idx in groups.values():
                results = upscale_images(
                    self.model,
                    [images[i] for i in idx],
                    self.scale,
                    self.device,
                    tile=self.tile,
                    batch_size=batch_size,
                )
                for i, sr in zip(idx, results, strict=True):
                    out[i] = sr
        return out


def _default_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _network_method(
    name: str | None, path: Path, device: torch.device, arch: str | None = None
) -> SRMethod:
    model, state = generator_from_checkpoint(path, arch)
    name = name or state.get("name") or path.stem
    if hasattr(model, "fused"):
        model = model.fused()  # BatchNorm folded into the convs: same output, faster
    model = model.to(device).to(memory_format=torch.channels_last)
    return SRMethod(
        name=name,
        kind="network",
        scale=model.config.scale,
        model=model,
        device=device,
        checkpoint=path,
    )


@functools.cache
def _cached_builtin(name: str, scale: int, device: torch.device) -> SRMethod:
    path = CHECKPOINT_DIR / f"{name}_x{scale}.pt"
    if not path.is_file():
        shipped = sorted(p.name for p in CHECKPOINT_DIR.glob(f"{name}_x*.pt"))
        raise CheckpointError(
            f"{path}: checkpoint for {name} x{scale} not found"
            + (f" (shipped: {', '.join(shipped)})" if shipped else "")
            + "; train one (python -m sr_models.train) and export it there"
        )
    return _network_method(name, path, device, _ARCH_OF[name])


def get_method(name: str, scale: int = 4, device: str | torch.device | None = None) -> SRMethod:
    """A built-in method by name (see BUILTIN_METHODS); networks are loaded once per process.

    Raises ValueError for an unknown name or scale, CheckpointError (a ValueError) when a
    network's checkpoint file is missing or unreadable.
    """
    if name not in BUILTIN_METHODS:
        raise ValueError(f"unknown method {name!r}; valid names: {', '.join(BUILTIN_METHODS)}")
    if not isinstance(scale, int | np.integer) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if name in INTERPOLATIONS:
        return SRMethod(name=name, kind="interpolation", scale=int(scale))
    return _cached_builtin(name, int(scale), _default_device(device))


@functools.cache
def _cached_checkpoint(path: Path, mtime: float, device: torch.device) -> SRMethod:
    return _network_method(None, path, device)


def method_from_checkpoint(path: str | Path, device: str | torch.device | None = None) -> SRMethod:
    """A network method from any exported or training checkpoint file (cached per file)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found; check the path")
    method = _cached_checkpoint(path, path.stat().st_mtime, _default_device(device))
    return method
