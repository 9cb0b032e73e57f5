"""Tiny networks a researcher might register by class path (tests/test_sr_external.py).

`PixelShuffleNet` takes BGR in [-1, 1] and returns BGR in [-1, 1]: a 1x1 conv to scale**2 x 3
channels and a pixel shuffle, so each output pixel is an affine map of one input pixel and a test
can compute the expected image by hand. The others break one validation rule each.
"""

import torch
from torch import nn


class PixelShuffleNet(nn.Module):
    """Args: scale (default 2), channels (default 3)."""

    def __init__(self, scale: int = 2, channels: int = 3):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(channels, channels * scale * scale, 1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        # x: (N, 3, H, W) -> (N, 3, s*H, s*W)
        return self.shuffle(self.conv(x))


class NaNNet(PixelShuffleNet):
    def forward(self, x):
        return super().forward(x) * float("nan")


class ConstantNet(PixelShuffleNet):
    def forward(self, x):
        return torch.zeros_like(super().forward(x)) + 0.25


class EvenOnlyNet(PixelShuffleNet):
    def forward(self, x):
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"even sizes only, got {tuple(x.shape[-2:])}")
        return super().forward(x)


class GreedyNet(PixelShuffleNet):
    """Keeps 64 feature maps at the output resolution: a lot of memory per input pixel."""

    def forward(self, x):
        wide = nn.functional.interpolate(x, scale_factor=self.scale).repeat(1, 64, 1, 1)
        return super().forward(x) + wide.mean(1, keepdim=True) * 0


class HalfOverflowNet(PixelShuffleNet):
    """Fine in float32; in float16 an intermediate passes 65504 and becomes Inf."""

    def forward(self, x):
        return super().forward(x) * 1e5 / 1e5
