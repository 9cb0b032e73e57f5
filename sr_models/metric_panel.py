"""Image-quality metrics beyond PSNR/SSIM, for judging which one agrees with people (issue 14).

Every metric is piq 0.8.0's (Kastryulin et al., 2022), computed on the HR and SR images as uint8
RGB HxWx3 after removing `crop_border` pixels (the scale) from every side, as PSNR/SSIM in
:mod:`sr_models.metrics`; a no-reference metric sees only the cropped SR image. `_TABLE` below
is the conventions table (channel, data range, direction, weight files); each description says
how the metric resamples. `rgb2y` is the project's BT.601 luma (MATLAB `rgb2ycbcr`, 16-235,
rounded); Y of YIQ is 0.299 R + 0.587 G + 0.114 B in 0-255 (MATLAB `rgb2gray`, which GMSD's and
BRISQUE's authors used). Against ports of the authors' MATLAB (tests): VIFp agrees to 1e-5,
GMSD to 1/(2N) (`std2` divides by N - 1), MS-SSIM to 2e-5 where sides halve evenly and 2e-3 where
not (piq pads an odd side at the top/left before halving, `msssim.m` at the bottom/right).
MS-SSIM under 161 pixels a side is refused rather than computed with fewer scales, whose
weights differ: such a value would not be comparable with the others.

Nothing is downloaded: LPIPS, DISTS and BRISQUE read the weight files whose paths the caller
passes (:data:`WEIGHT_FILES`) with ``torch.load(weights_only=True)``. NIQE is not offered:
neither piq 0.8.0 nor scikit-image 0.26 implements it.

Tensors are float32, but VIFp's are float64: its float32 variances (E[x^2] - mu^2 at 0-255)
lose up to 3e-4 of the value in flat regions; on the others float64 costs 2-4x the time for
< 2e-5. Run it with torch on one thread (``torch.set_num_threads(1)`` in the calling process or
thread; it is not changed here, as the setting is shared by threads): on a 2-core machine a
second OpenMP thread made these small images slower and erratic (bench/bench_metric_panel.py).
:data:`DEFAULT_PANEL` then costs about as much as PSNR + SSIM again.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import piq
import torch
import torch.nn.functional as F
from piq.brisque import _natural_scene_statistics, _rbf_kernel, _scale_features
from piq.functional import imresize, rgb2yiq
from piq.perceptual import ContentLoss

# The names, conventions and weight files live in metric_specs (torch-free, for the web).
from .metric_specs import (  # noqa: F401  (re-exported: this module's API)
    DEFAULT_PANEL,
    METRICS,
    WEIGHT_FILES,
    MetricFailure,
    MetricSpec,
    missing_weights_message,
)
from .metrics import rgb2y

_MS_SSIM_MIN = 161  # (11 - 1) * 2 ** (5 - 1) + 1
_VGG_LAYERS = ["3", "8", "15", "22", "29"]  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)
_DISTS_CHANNELS = [3, 64, 128, 256, 512, 512]
_BRISQUE_RHO = -153.591
_YIQ_Y = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class _WeightsError(ValueError):
    """A weight file is missing, unreadable or of the wrong shape; the message says which."""


@dataclass
class _Pair:
    """Cropped HR and SR images, converted once for every metric that asks."""

    hr: np.ndarray
    sr: np.ndarray

    def _both(self, convert) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(_chw(convert(i)) for i in (self.hr, self.sr))

    @functools.cached_property
    def y(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._both(lambda i: rgb2y(i)[..., None])

    @functools.cached_property
    def rgb(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._both(lambda i: i)

    @functools.cached_property
    def grey(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Y of piq's YIQ, which piq.gmsd would compute from RGB: 1/6 of the time done here."""
        return self._both(lambda i: i.astype(np.float32) @ _YIQ_Y[:, None])

    @functools.cached_property
    def rgb_half(self) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB mean-pooled 2x2 after a zero row and column if a side is odd, as piq.haarpsi pools
        YIQ (linear, so the order does not matter): the conversion then costs a quarter."""

        def pool(img):
            odd = max(img.shape[0] % 2, img.shape[1] % 2)
            a = np.pad(img, ((0, odd), (0, odd), (0, 0)))
            a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2].astype(np.uint16)  # exact sums
            return (a[::2, ::2] + a[1::2, ::2] + a[::2, 1::2] + a[1::2, 1::2]) * np.float32(0.25)

        return self._both(pool)


def _chw(a: np.ndarray) -> torch.Tensor:
    """HxWxC -> 1xCxHxW float32, contiguous (piq is slower on channels-last strides)."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))[None]


def _pair(hr, sr, crop_border: int) -> _Pair:
    a, b = np.asarray(hr), np.asarray(sr)
    for img in (a, b):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected uint8 HxWx3 RGB, got {img.dtype} of shape {img.shape}")
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    c = crop_border
    a, b = a[c : a.shape[0] - c, c : a.shape[1] - c], b[c : b.shape[0] - c, c : b.shape[1] - c]
    if a.size == 0:
        raise ValueError(f"nothing left after cropping {crop_border} pixels from each border")
    return _Pair(np.ascontiguousarray(a), np.ascontiguousarray(b))


def _load(path: str, key: str):
    file_name = WEIGHT_FILES[key][0]
    if not Path(path).is_file():
        raise _WeightsError(f"weight file {key!r} ({file_name}) not found at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike mean an unusable file
        raise _WeightsError(
            f"weight file {key!r} at {path} is not a {file_name} torch.load can read "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from exc


def _vgg16_features(path: str) -> torch.nn.Sequential:
    """torchvision's VGG16 `features` (conv + ReLU + max-pool), weights from a local file."""
    from torchvision.models.vgg import cfgs, make_layers

    state = _load(path, "vgg16")
    if not isinstance(state, Mapping):
        raise _WeightsError(f"weight file 'vgg16' at {path} holds no state dict")
    if any(k.startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    net = make_layers(cfgs["D"])
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise _WeightsError(
            f"weight file 'vgg16' at {path} does not fit VGG16's features: {_first_line(exc)}"
        ) from exc
    return net.eval()


def _lpips_linear(obj, path: str) -> list[torch.Tensor]:
    if isinstance(obj, Mapping):
        keys = [f"lin{i}.model.1.weight" for i in range(5)]
        obj = [obj[k] for k in keys] if all(k in obj for k in keys) else list(obj.values())
    obj = list(obj) if isinstance(obj, tuple) else obj
    sizes = [t.numel() if torch.is_tensor(t) else 0 for t in obj] if isinstance(obj, list) else 0
    if sizes != list(_LPIPS_CHANNELS):
        raise _WeightsError(
            f"weight file 'lpips' at {path} should hold 5 tensors of 64, 128, 256, 512, 512 weights"
        )
    return [t.reshape(1, c, 1, 1).float() for t, c in zip(obj, _LPIPS_CHANNELS, strict=True)]


@functools.lru_cache(maxsize=2)
def _lpips_net(vgg_path: str, lpips_path: str) -> ContentLoss:
    """piq's LPIPS is ContentLoss with these arguments; built here so nothing is downloaded."""
    weights = _lpips_linear(_load(lpips_path, "lpips"), lpips_path)
    return ContentLoss(
        _vgg16_features(vgg_path),
        layers=_VGG_LAYERS,
        weights=weights,
        distance="mse",
        reduction="none",
        normalize_features=True,
    ).eval()


class _DISTS(piq.DISTS):
    """piq's DISTS with alpha/beta from a file; piq's own __init__ would download them."""

    def __init__(self, features: torch.nn.Sequential, alpha: torch.Tensor, beta: torch.Tensor):
        # The authors' forward divides alpha and beta by their joint sum; piq's does not, so
        # normalising here gives the authors' values from either file (identical images: 0).
        total = alpha.sum() + beta.sum()
        weights = [*torch.split(alpha / total, _DISTS_CHANNELS, 1)]
        weights += torch.split(beta / total, _DISTS_CHANNELS, 1)
        ContentLoss.__init__(
            self,
            features,
            layers=_VGG_LAYERS,
            weights=weights,
            replace_pooling=True,  # piq's DISTS.replace_pooling: max-pool -> L2 pooling
            reduction="none",
            normalize_features=False,
            allow_layers_weights_mismatch=True,
        )


@functools.lru_cache(maxsize=2)
def _dists_net(vgg_path: str, dists_path: str) -> _DISTS:
    obj = _load(dists_path, "dists")
    n = sum(_DISTS_CHANNELS)
    if not (isinstance(obj, Mapping) and {"alpha", "beta"} <= set(obj)) or any(
        not torch.is_tensor(obj[k]) or obj[k].numel() != n for k in ("alpha", "beta")
    ):
        raise _WeightsError(f"weight file 'dists' at {dists_path} should hold alpha, beta of {n}")
    alpha, beta = (obj[k].reshape(1, n, 1, 1).float() for k in ("alpha", "beta"))
    return _DISTS(_vgg16_features(vgg_path), alpha, beta).eval()


@functools.lru_cache(maxsize=2)
def _brisque_svr(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    obj = _load(path, "brisque")
    if isinstance(obj, Mapping):
        obj = [obj.get("sv_coef"), obj.get("sv")]
    ok = isinstance(obj, (list, tuple)) and len(obj) == 2 and all(map(torch.is_tensor, obj))
    if not ok or obj[1].ndim != 2 or obj[1].shape[1] != 36 or obj[0].numel() != obj[1].shape[0]:
        raise _WeightsError(
            f"weight file 'brisque' at {path} should hold (sv_coef of n, support vectors n x 36)"
        )
    return obj[0].reshape(-1).float(), obj[1].t().float()


def _shorter_side_256(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    if min(h, w) <= 256:
        return x
    size = (256, int(256 * w / h)) if h <= w else (int(256 * h / w), 256)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _ms_ssim(p: _Pair, weights) -> torch.Tensor:
    if min(p.hr.shape[:2]) < _MS_SSIM_MIN:
        h, w = p.hr.shape[:2]
        raise ValueError(f"needs {_MS_SSIM_MIN}x{_MS_SSIM_MIN} pixels after cropping, got {h}x{w}")
    return piq.multi_scale_ssim(p.y[1], p.y[0], data_range=255.0)


def _brisque(p: _Pair, weights) -> torch.Tensor:
    """piq.brisque with the support vectors from `weights` (piq's own would download them)."""
    sv_coef, sv = _brisque_svr(str(weights["brisque"]))
    x = torch.round(rgb2yiq(p.rgb[1])[:, :1])  # MATLAB rgb2gray keeps uint8
    features = []
    for _ in range(2):
        features.append(_natural_scene_statistics(x, 7, 7 / 6))
        x = imresize(x, sizes=(x.size(2) // 2, x.size(3) // 2))
    scaled = _scale_features(torch.cat(features, dim=-1))
    return _rbf_kernel(scaled, sv, gamma=0.05) @ sv_coef - _BRISQUE_RHO


# piq's argument order is (distorted, reference); only VIF is asymmetric.
_COMPUTE = {
    "ms_ssim": _ms_ssim,
    "vif": lambda p, w: piq.vif_p(p.y[1].double(), p.y[0].double(), data_range=255.0),
    "fsim": lambda p, w: piq.fsim(p.rgb[1], p.rgb[0], data_range=255.0, chromatic=True),
    "gmsd": lambda p, w: piq.gmsd(p.grey[1], p.grey[0], data_range=255.0),
    "haarpsi": lambda p, w: piq.haarpsi(
        p.rgb_half[1], p.rgb_half[0], data_range=255.0, subsample=False
    ),
    "lpips": lambda p, w: _lpips_net(str(w["vgg16"]), str(w["lpips"]))(
        p.rgb[1] / 255.0, p.rgb[0] / 255.0
    ),
    "dists": lambda p, w: _dists_net(str(w["vgg16"]), str(w["dists"]))(
        _shorter_side_256(p.rgb[1] / 255.0), _shorter_side_256(p.rgb[0] / 255.0)
    ),
    "brisque": _brisque,
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _one(name: str, pair: _Pair, weights: Mapping[str, str | Path]) -> float | MetricFailure:
    spec = METRICS[name]
    missing = [k for k in spec.weight_files if not weights.get(k)]
    if missing:
        return MetricFailure(missing_weights_message(name, missing))
    try:
        value = float(_COMPUTE[name](pair, weights).reshape(-1)[0])
    except Exception as exc:  # one metric failing must never lose the others
        return MetricFailure(f"{spec.label}: {_first_line(exc)}")
    if not math.isfinite(value):
        return MetricFailure(f"{spec.label} came out {value}")
    return value


def measure_pair(
    hr: np.ndarray,
    sr: np.ndarray,
    names: Iterable[str],
    crop_border: int,
    weights: Mapping[str, str | Path] | None = None,
) -> dict[str, float | MetricFailure]:
    """The named metrics of one SR image against its HR reference.

    Args:
        hr, sr: uint8 RGB images, HxWx3, of equal shape.
        names: keys of :data:`METRICS`, e.g. :data:`DEFAULT_PANEL`.
        crop_border: pixels removed from each border first (the scale), as for PSNR/SSIM.
        weights: key of :data:`WEIGHT_FILES` -> path, for the metrics that need weights.
    Returns:
        name -> value, or a :class:`MetricFailure` saying in one line why that metric is missing
        (image too small, weight file absent or unreadable, ...); the others are unaffected.
    Raises:
        ValueError: an unknown metric name, or images that are not uint8 RGB of one shape.
    """
    names = list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    pair = _pair(hr, sr, crop_border)
    with torch.inference_mode():
        return {name: _one(name, pair, weights or {}) for name in names}
