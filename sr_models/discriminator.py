"""Discriminator of Ledig et al. (SRGAN, CVPR 2017, figure 4), returning logits.

Eight 3x3 convs k3n64s1, k3n64s2, k3n128s1, k3n128s2, k3n256s1, k3n256s2, k3n512s1, k3n512s2,
BN after every conv but the first, LeakyReLU(0.2), no pooling; Dense(1024), LeakyReLU,
Dense(1). The final sigmoid is left to `BCEWithLogitsLoss` for numerical stability.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class DiscriminatorConfig:
    input_size: int = 96
    num_feat: int = 64

    def __post_init__(self):
        if self.input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {self.input_size}")


class Discriminator(nn.Module):
    """Args (in `DiscriminatorConfig`): input_size=96 (HR crop side), num_feat=64."""

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        nf = config.num_feat
        widths = [nf, nf, 2 * nf, 2 * nf, 4 * nf, 4 * nf, 8 * nf, 8 * nf]
        layers, in_ch = [], 3
        for i, out_ch in enumerate(widths):
            stride = 2 if i % 2 else 1
            layers.append(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        side = config.input_size // 16
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(8 * nf * side * side, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x):
        # x: (N, 3, S, S) HR in [-1, 1]
        if x.shape[-2:] != (self.config.input_size, self.config.input_size):
            raise ValueError(
                f"discriminator expects {self.config.input_size}x{self.config.input_size} "
                f"crops, got {tuple(x.shape[-2:])}"
            )
        feat = self.features(x)  # (N, 8nf, S/16, S/16)
        return self.classifier(feat)  # (N, 1) logits
