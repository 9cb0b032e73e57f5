"""Training pairs: HR folders in memory, LR made once per image by a named kernel, random
aligned crops with flips and 90-degree rotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sr_models.degrade import degrade, imresize, modcrop
from sr_models.io import list_images, read_rgb


def load_pairs(paths: list[Path], scale: int, kernel: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR, HR) uint8 pairs: HR modcropped to the scale, LR degraded from the whole image."""
    pairs = []
    for path in paths:
        hr = modcrop(read_rgb(path, convert=True), scale)
        pairs.append((degrade(hr, scale, kernel), hr))
    return pairs


def split_paths(
    train_dirs: list[str], val_dir: str | None, holdout: int
) -> tuple[list[Path], list[Path]]:
    """Training and validation files: `val_dir` if given, else the last `holdout` files of the
    last training folder (sorted by name), removed from training."""
    train = [p for d in train_dirs for p in list_images(d)]
    if val_dir:
        return train, list_images(val_dir)
    if holdout <= 0:
        return train, []
    last_dir = list_images(train_dirs[-1])
    val = last_dir[-holdout:]
    return [p for p in train if p not in val], val


class PatchSampler:
    """Random aligned (LR, HR) crops of an in-memory set of pairs.

    Args:
        pairs: (LR, HR) uint8 images, HR = scale x LR.
        scale: the SR factor.
        patch: HR crop side (96 in the paper); must be a multiple of `scale`.
        upscale_input: give the LR crop upscaled by MATLAB bicubic (SRCNN).
    """

    def __init__(self, pairs, scale: int, patch: int, upscale_input: bool = False):
        if patch % scale:
            raise ValueError(f"patch {patch} must be a multiple of the scale {scale}")
        self.pairs = [(lr, hr) for lr, hr in pairs if min(lr.shape[:2]) * scale >= patch]
        if not self.pairs:
            raise ValueError(f"no training image is at least {patch}x{patch} pixels")
        self.scale, self.patch, self.upscale_input = scale, patch, upscale_input
        # SRCNN's input: the whole LR image upscaled once, so crops carry no resize border.
        self.upscaled = [imresize(lr, scale) for lr, _ in self.pairs] if upscale_input else None
        # Area-weighted choice so every HR pixel is sampled about equally often.
        areas = np.array([hr.shape[0] * hr.shape[1] for _, hr in self.pairs], dtype=np.float64)
        self.weights = areas / areas.sum()

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR in [0, 1], HR in [-1, 1]) float tensors, (N, 3, h, w) and (N, 3, H, W)."""
        s, lp = self.scale, self.patch // self.scale
        lrs, hrs = [], []
        for i in rng.choice(len(self.pairs), size=batch, p=self.weights):
            lr, hr = self.pairs[i]
            y = int(rng.integers(0, lr.shape[0] - lp + 1))
            x = int(rng.integers(0, lr.shape[1] - lp + 1))
            hr_c = hr[y * s : (y + lp) * s, x * s : (x + lp) * s]
            if self.upscale_input:
                lr_c = self.upscaled[i][y * s : (y + lp) * s, x * s : (x + lp) * s]
            else:
                lr_c = lr[y : y + lp, x : x + lp]
            k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
            lr_c, hr_c = np.rot90(lr_c, k), np.rot90(hr_c, k)
            if flip:
                lr_c, hr_c = lr_c[:, ::-1], hr_c[:, ::-1]
            lrs.append(lr_c)
            hrs.append(hr_c)
        lr_t = torch.from_numpy(np.stack(lrs).astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        hr_t = torch.from_numpy(np.stack(hrs).astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
        return lr_t.contiguous(), hr_t.contiguous()
