"""ESPCN of Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR 2016: (f1, n1) = (5, 64), (f2, n2) = (3, 32),
f3 = 3, tanh, then a sub-pixel shuffle; on RGB.

Input: LR RGB in [0, 1]. Output: HR RGB in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sr_models.srresnet import icnr_


@dataclass
class ESPCNConfig:
    scale: int = 4
    n1: int = 64
    n2: int = 32

    def __post_init__(self):
        if self.scale < 1:
            raise ValueError(f"ESPCN scale must be a positive integer, got {self.scale}")


class ESPCN(nn.Module):
    """Args (in `ESPCNConfig`): scale=4, n1=64, n2=32."""

    def __init__(self, config: ESPCNConfig | None = None):
        super().__init__()
        self.config = config = config or ESPCNConfig()
        s = config.scale
        self.conv1 = nn.Conv2d(3, config.n1, 5, padding=2)
        self.conv2 = nn.Conv2d(config.n1, config.n2, 3, padding=1)
        self.conv3 = nn.Conv2d(config.n2, 3 * s * s, 3, padding=1)
        self.shuffle = nn.PixelShuffle(s)
        self.act = nn.Tanh()
        for m in (self.conv1, self.conv2):
            nn.init.xavier_normal_(m.weight, gain=5 / 3)
            nn.init.zeros_(m.bias)
        icnr_(self.conv3.weight, s)
        self.conv3.weight.data.mul_(0.1)
        nn.init.zeros_(self.conv3.bias)

    @property
    def receptive_radius(self) -> int:
        """LR (input) pixels of context: 2 + 1 + 1."""
        return 4

    def forward(self, x):
        # x: (N, 3, h, w) in [0, 1]
        y = self.act(self.conv1(x))  # (N, n1, h, w)
        y = self.act(self.conv2(y))  # (N, n2, h, w)
        return self.shuffle(self.conv3(y))  # (N, 3, s*h, s*w) in [-1, 1]
