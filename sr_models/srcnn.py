"""SRCNN 9-5-5 of Dong et al., "Image Super-Resolution Using Deep Convolutional Networks",
TPAMI 2016 (the 9-5-5 variant with 64/32 filters), on RGB.

Input: the LR image upscaled by MATLAB bicubic to HR size, in [0, 1] (the caller does the
upscaling: see `sr_models.methods`). Output: HR RGB in [-1, 1], as every network here.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class SRCNNConfig:
    scale: int = 4
    n1: int = 64
    n2: int = 32

    def __post_init__(self):
        if self.scale < 1:
            raise ValueError(f"SRCNN scale must be a positive integer, got {self.scale}")


class SRCNN(nn.Module):
    """Args (in `SRCNNConfig`): scale (only recorded: input is pre-upscaled), n1=64, n2=32."""

    upscales_input = True

    def __init__(self, config: SRCNNConfig | None = None):
        super().__init__()
        self.config = config = config or SRCNNConfig()
        # Zero padding keeps the output size (the paper's valid convolutions shrink it by 16).
        self.conv1 = nn.Conv2d(3, config.n1, 9, padding=4)
        self.conv2 = nn.Conv2d(config.n1, config.n2, 5, padding=2)
        self.conv3 = nn.Conv2d(config.n2, 3, 5, padding=2)
        self.relu = nn.ReLU(inplace=True)
        for m in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        nn.init.normal_(self.conv3.weight, std=1e-3)
        nn.init.zeros_(self.conv3.bias)

    @property
    def receptive_radius(self) -> int:
        """Input (HR-size) pixels of context an output pixel depends on: 4 + 2 + 2."""
        return 8

    def forward(self, x):
        # x: (N, 3, H, W) bicubic-upscaled, in [0, 1]
        y = self.relu(self.conv1(x))  # (N, n1, H, W)
        y = self.relu(self.conv2(y))  # (N, n2, H, W)
        # Residual on the input makes the short CPU training converge; same layers as the paper.
        return self.conv3(y) + (2 * x - 1)  # (N, 3, H, W) in [-1, 1]
