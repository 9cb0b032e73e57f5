"""SRResNet generator of Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017 (arXiv 1609.04802), figure 4.

Paper-exact: no BasicSR modifications (BasicSR's MSRResNet drops BN and the post-body conv).
Input: LR RGB in [0, 1]. Output: HR RGB in [-1, 1] (the paper's target range).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class SRResNetConfig:
    scale: int = 4
    num_feat: int = 64
    num_blocks: int = 16

    def __post_init__(self):
        if self.scale not in (2, 4, 8):
            raise ValueError(f"SRResNet supports scale 2, 4 or 8, got {self.scale}")
        if self.num_feat < 1 or self.num_blocks < 0:
            raise ValueError(f"bad SRResNet width/depth: {self.num_feat}/{self.num_blocks}")


def icnr_(weight: torch.Tensor, upscale: int) -> None:
    """ICNR init (Aitken et al. 2017) for a conv feeding PixelShuffle(upscale): each group of
    upscale**2 output channels starts identical, so the shuffle starts as nearest-neighbour
    upsampling and leaves no checkerboard."""
    out_ch = weight.shape[0]
    sub = torch.empty(out_ch // upscale**2, *weight.shape[1:])
    nn.init.kaiming_normal_(sub, a=0.25, nonlinearity="leaky_relu")
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(upscale**2, dim=0))


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN plus identity."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(num_feat)
        self.prelu = nn.PReLU(num_feat)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(num_feat)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    """SRResNet generator.

    Args (in `SRResNetConfig`):
        scale: 2, 4 or 8 (log2(scale) sub-pixel x2 stages). Default 4.
        num_feat: feature maps (64 in the paper).
        num_blocks: residual blocks B (16 in the paper; ~1.55 M parameters at x4).
    """

    def __init__(self, config: SRResNetConfig | None = None):
        super().__init__()
        self.config = config = config or SRResNetConfig()
        nf = config.num_feat
        self.conv_first = nn.Conv2d(3, nf, 9, padding=4)
        self.prelu_first = nn.PReLU(nf)
        self.body = nn.Sequential(*[ResidualBlock(nf) for _ in range(config.num_blocks)])
        self.conv_body = nn.Conv2d(nf, nf, 3, padding=1)
        self.bn_body = nn.BatchNorm2d(nf)
        stages = []
        for _ in range(int(math.log2(config.scale))):
            stages += [nn.Conv2d(nf, nf * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(nf)]
        self.upsample = nn.Sequential(*stages)
        self.conv_last = nn.Conv2d(nf, 3, 9, padding=4)
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        for block in self.body:
            # Small residual branches at start keep the deep sum stable (as BasicSR's 0.1 scale).
            block.conv1.weight.data.mul_(0.1)
            block.conv2.weight.data.mul_(0.1)
        for m in self.upsample:
            if isinstance(m, nn.Conv2d):
                icnr_(m.weight, 2)
        nn.init.kaiming_normal_(self.conv_last.weight, nonlinearity="linear")
        self.conv_last.weight.data.mul_(0.1)

    @torch.no_grad()
    def fused(self) -> SRResNet:
        """An eval-mode copy with every BatchNorm folded into the conv before it (the same
        function up to float rounding, fewer passes over memory at inference)."""
        model = copy.deepcopy(self).eval()
        pairs = [(b, "conv1", "bn1") for b in model.body] + [
            (b, "conv2", "bn2") for b in model.body
        ]
        pairs.append((model, "conv_body", "bn_body"))
        for owner, conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
            setattr(owner, bn_name, nn.Identity())
        return model

    @property
    def receptive_radius(self) -> int:
        """LR (input) pixels of context an output pixel depends on, for tiled inference."""
        c = self.config
        # head 4, two 3x3 per block, conv_body 1, one 3x3 per upsample stage, tail <= 1.
        return 4 + 2 * c.num_blocks + 1 + int(math.log2(c.scale)) + 1

    def forward(self, x):
        # x: (N, 3, h, w) in [0, 1]
        feat = self.prelu_first(self.conv_first(x))  # (N, nf, h, w)
        body = self.bn_body(self.conv_body(self.body(feat)))  # (N, nf, h, w)
        up = self.upsample(feat + body)  # (N, nf, s*h, s*w)
        return self.conv_last(up)  # (N, 3, s*h, s*w) in [-1, 1]
