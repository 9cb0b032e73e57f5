"""Losses of SRGAN (Ledig et al., CVPR 2017, section 2.2): pixel MSE, VGG19 feature MSE
(VGG22 = relu2_2, VGG54 = relu5_4, "after activation, before the max-pooling", feature maps
rescaled by 1/12.75), total variation, and the adversarial loss on discriminator logits.

Images enter every loss in the generator's range [-1, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# torchvision `vgg19().features` index of the ReLU after conv2_2 / conv5_4.
VGG_LAYERS = {"vgg22": 8, "vgg54": 35}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_ENV = "SRMOS_VGG19_WEIGHTS"


def mse_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(sr, hr)


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation (mean absolute neighbour difference)."""
    dh = (img[..., 1:, :] - img[..., :-1, :]).abs().mean()
    dw = (img[..., :, 1:] - img[..., :, :-1]).abs().mean()
    return dh + dw


def adversarial_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(LR)), the paper's non-saturating generator loss (mean over the batch)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def load_vgg19_features(weights: str | Path | None = None) -> nn.Sequential:
    """torchvision VGG19 `features` with ImageNet weights, from a file or torchvision's cache.

    Order: `weights` argument, env SRMOS_VGG19_WEIGHTS, torchvision's download. Raises
    RuntimeError saying how to provide the file when none works.
    """
    from torchvision.models import VGG19_Weights, vgg19

    path = weights or os.environ.get(VGG_ENV)
    if path:
        path = Path(path)
        if not path.is_file():
            raise RuntimeError(f"{path}: VGG19 weights file not found; fix the path")
        model = vgg19(weights=None)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if "state_dict" in state:
            state = state["state_dict"]
        model.load_state_dict(state)
        return model.features.eval()
    try:
        model = vgg19(weights=VGG19_Weights.IMAGENET1K_V1)
    except Exception as exc:  # no network, proxy, corrupt cache...
        raise RuntimeError(
            "VGG losses need ImageNet VGG19 weights, which could not be downloaded "
            f"({type(exc).__name__}). Download vgg19-dcbb9e9d.pth from "
            "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth on a machine with network "
            f"and give its path in the training config (vgg_weights) or in ${VGG_ENV}"
        ) from None
    return model.features.eval()


class VGGLoss(nn.Module):
    """MSE between VGG19 feature maps of SR and HR, each divided by 12.75 (the paper's rescale).

    Args:
        layer: "vgg22" (relu2_2) or "vgg54" (relu5_4).
        weights: path of torchvision VGG19 weights (else env / download, see load_vgg19_features).
    """

    def __init__(self, layer: str = "vgg54", weights: str | Path | None = None):
        super().__init__()
        if layer not in VGG_LAYERS:
            raise ValueError(f"unknown VGG layer {layer!r}; choose one of {', '.join(VGG_LAYERS)}")
        features = load_vgg19_features(weights)
        self.features = features[: VGG_LAYERS[layer] + 1]
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def _feat(self, x):
        x = ((x + 1) / 2 - self.mean) / self.std  # [-1, 1] -> ImageNet-normalised
        return self.features(x) / 12.75

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self._feat(hr)
        return F.mse_loss(self._feat(sr), target)
