"""Running a generator on uint8 images: tiling with overlap, channels_last, fp16 autocast on CUDA.

Every generator here takes RGB in [0, 1] and returns RGB in [-1, 1]; SRCNN-like networks
(`upscales_input = True`) take the LR image already upscaled by MATLAB bicubic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sr_models.degrade import imresize

DEFAULT_TILE = 192  # input pixels per tile side: bounds memory for big images
# On the CPU a batch stops paying once one forward pass has this many input pixels: the cores
# are busy anyway, and a bigger pass allocates hundreds of MB of fresh activations (SRResNet x4,
# 64x64 inputs: 47 ms an image in batches of 1-4, 55-120 ms in batches of 8-16; benchmarks.md).
CPU_BATCH_PIXELS = 128 * 128


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """Equal-size HxWx3 uint8 images -> (N, 3, H, W) float32 in [0, 1]."""
    arr = np.stack(images).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def to_uint8(out: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) in [-1, 1] -> HxWx3 uint8 images (rounded)."""
    out = ((out.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return list(out.permute(0, 2, 3, 1).cpu().numpy())


def model_input(model: nn.Module, lr: np.ndarray, scale: int) -> np.ndarray:
    if getattr(model, "upscales_input", False):
        return imresize(lr, scale)
    return lr


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.contiguous(memory_format=torch.channels_last)
    if x.device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            return model(x).float()
    return model(x)


@torch.inference_mode()
def run_tiled(
    model: nn.Module,
    x: torch.Tensor,
    out_scale: int,
    tile: int | None = DEFAULT_TILE,
    overlap: int | None = None,
) -> torch.Tensor:
    """Run `model` on (N, 3, h, w) input in tiles of `tile` pixels plus `overlap` context.

    With overlap >= the model's receptive radius (the default), each tile's output sees exactly
    the context it would see untiled, so the result equals the untiled one up to float rounding.
    `tile=None` runs the whole image at once.
    """
    n, c, h, w = x.shape
    if tile is None or (h <= tile and w <= tile):
        return _forward(model, x)
    if overlap is None:
        overlap = model.receptive_radius
    s = out_scale
    out = torch.empty(n, 3, h * s, w * s, device=x.device)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
            yb, xb = min(y1 + overlap, h), min(x1 + overlap, w)
            part = _forward(model, x[:, :, ya:yb, xa:xb])
            out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = part[
                :, :, (y0 - ya) * s : (y1 - ya) * s, (x0 - xa) * s : (x1 - xa) * s
            ]
    return out


def upscale_images(
    model: nn.Module,
    images: list[np.ndarray],
    scale: int,
    device: torch.device | str = "cpu",
    tile: int | None = DEFAULT_TILE,
    batch_size: int = 8,
) -> list[np.ndarray]:
    """Upscale equal-size RGB uint8 LR images by `scale` in batches of `batch_size` (on the
    CPU, of at most `CPU_BATCH_PIXELS` input pixels)."""
    out_scale = 1 if getattr(model, "upscales_input", False) else scale
    if getattr(model, "upscales_input", False) and tile is not None:
        tile = tile * scale
    if torch.device(device).type == "cpu" and images:
        h, w = images[0].shape[:2]
        pixels = h * w * (scale * scale if getattr(model, "upscales_input", False) else 1)
        batch_size = max(1, min(batch_size, CPU_BATCH_PIXELS // pixels))
    results = []
    for i in range(0, len(images), batch_size):
        chunk = [model_input(model, im, scale) for im in images[i : i + batch_size]]
        x = to_tensor(chunk).to(device)
        results += to_uint8(run_tiled(model, x, out_scale, tile))
    return results
