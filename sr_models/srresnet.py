"""SRResNet generator of Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017 (arXiv 1609.04802), figure 4.

Paper-exact: no BasicSR modifications (BasicSR's MSRResNet drops BN and the post-body conv).
Input: LR RGB in [0, 1]. Output: HR RGB in [-1, 1] (the paper's target range).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


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


def subpixel_tail_weight(weight: torch.Tensor, r: int) -> torch.Tensor:
    """Rewrite a k x k conv that reads PixelShuffle(r) output as a conv on the unshuffled maps.

    `weight` (out, c, k, k) acts on u = PixelShuffle(r)(v), v of shape (c*r*r, h, w). Returns the
    weight (out*r*r, c*r*r, K, K) of the conv on v whose output, PixelShuffle(r)-ed, equals
    conv(u) exactly (the same products, summed in another order): output phase (p, q) at low-res
    (Y, X) is full-res pixel (rY+p, rX+q), which reads u at offset dy = r*DY + i - p from input
    phase (i, j) at low-res offset DY. Zero padding carries over because u is outside the image
    exactly where v is. The window is symmetric, K = 2 * ceil((k // 2) / r) + 1 (5 for k = 9,
    r = 2). For an odd k x k conv with stride 1, 'same' zero padding and no groups.
    """
    out_ch, in_ch, k, _ = weight.shape
    half = k // 2
    hi = -(-half // r)  # ceil(half / r): DY = floor((p + dy) / r) for p < r, |dy| <= half
    lo = -hi
    size = hi - lo + 1
    new = weight.new_zeros(out_ch, r, r, in_ch, r, r, size, size)  # o, p, q, c, i, j, DY, DX
    for p, q, i, j in itertools.product(range(r), repeat=4):
        for big_y, big_x in itertools.product(range(lo, hi + 1), repeat=2):
            dy, dx = r * big_y + i - p, r * big_x + j - q
            if abs(dy) <= half and abs(dx) <= half:
                new[:, p, q, :, i, j, big_y - lo, big_x - lo] = weight[:, :, dy + half, dx + half]
    return new.reshape(out_ch * r * r, in_ch * r * r, size, size)


class SubPixelTail(nn.Module):
    """PixelShuffle(r) -> PReLU -> k x k conv, computed without materialising the shuffled maps.

    The PReLU moves before the shuffle (its per-channel slopes repeated r*r times), the conv runs
    on the r*r-times smaller grid with `subpixel_tail_weight`, and only its few output channels
    are shuffled. At x4 this turns SRResNet's 9x9 64->3 conv on the full HR grid (3 output
    channels: a poor matrix shape, a third of the inference time) into a 5x5 256->12 conv on the
    half-size grid, and drops one shuffle of 64 maps at HR size.
    """

    def __init__(self, prelu: nn.PReLU, conv: nn.Conv2d, r: int):
        super().__init__()
        self.r = r
        slopes = prelu.weight.detach()
        self.slopes = nn.Parameter(
            slopes.repeat_interleave(r * r) if slopes.numel() > 1 else slopes
        )
        weight = subpixel_tail_weight(conv.weight.detach(), r)
        self.weight = nn.Parameter(weight.contiguous(memory_format=torch.channels_last))
        self.bias = nn.Parameter(conv.bias.detach().repeat_interleave(r * r))
        self.padding = weight.shape[-1] // 2

    def forward(self, v):
        out = F.conv2d(F.prelu(v, self.slopes), self.weight, self.bias, padding=self.padding)
        return F.pixel_shuffle(out, self.r)


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
        """An eval-mode copy for inference: every BatchNorm folded into the conv before it, and
        the last shuffle, PReLU and output conv replaced by `SubPixelTail`. The same function up
        to float rounding, with fewer passes over memory and better-shaped convolutions."""
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
        tail = model.conv_last
        plain = (
            tail.kernel_size[0] == tail.kernel_size[1]
            and tail.kernel_size[0] % 2 == 1
            and tail.stride == (1, 1)
            and tail.padding == (tail.kernel_size[0] // 2,) * 2
            and tail.groups == 1
            and tail.dilation == (1, 1)
        )
        if len(model.upsample) and plain:
            *stages, shuffle, prelu = model.upsample
            model.conv_last = SubPixelTail(prelu, model.conv_last, shuffle.upscale_factor)
            model.upsample = nn.Sequential(*stages)
        return model

    @property
    def receptive_radius(self) -> int:
        """LR (input) pixels of context an output pixel depends on, for tiled inference."""
        c = self.config
        # head 4, two 3x3 per block, conv_body 1, one 3x3 per upsample stage (at most one LR
        # pixel each), and the 9x9 tail's 4 HR pixels: ceil(4 / scale) LR pixels (2 at x2).
        return 4 + 2 * c.num_blocks + 1 + int(math.log2(c.scale)) + math.ceil(4 / c.scale)

    def forward(self, x):
        # x: (N, 3, h, w) in [0, 1]
        feat = self.prelu_first(self.conv_first(x))  # (N, nf, h, w)
        body = self.bn_body(self.conv_body(self.body(feat)))  # (N, nf, h, w)
        up = self.upsample(feat + body)  # (N, nf, s*h, s*w)
        return self.conv_last(up)  # (N, 3, s*h, s*w) in [-1, 1]
