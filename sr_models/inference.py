"""Running a generator on uint8 images: tiling with overlap, channels_last, fp16 autocast on CUDA.

Every generator here takes RGB in [0, 1] and returns RGB in [-1, 1]; SRCNN-like networks
(`upscales_input = True`) take the LR image already upscaled by MATLAB bicubic. External models
(sr_models.external) run wrapped in `ExternalSR`, RGB [0, 1] in and out, through `upscale_with`:
true float32 or float16 (no autocast), no channels_last, inputs padded to their size rules.
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


def to_uint8(out: torch.Tensor, low: float = -1.0) -> list[np.ndarray]:
    """(N, 3, H, W) in [low, 1] -> HxWx3 uint8 images (rounded); `low` is -1 for the
    generators here, 0 for external models (sr_models.external)."""
    out = ((out.float().clamp(low, 1) - low) * (255.0 / (1.0 - low))).round().to(torch.uint8)
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
    forward=_forward,
) -> torch.Tensor:
    """Run `model` on (N, 3, h, w) input in tiles of `tile` pixels plus `overlap` context.

    With overlap >= the model's receptive radius (the default), each tile's output sees exactly
    the context it would see untiled, so the result equals the untiled one up to float rounding.
    `tile=None` runs the whole image at once. `forward(model, x)` runs one tile; the default
    adds channels_last and fp16 autocast on CUDA, which suit the generators here.
    """
    n, c, h, w = x.shape
    if tile is None or (h <= tile and w <= tile):
        return forward(model, x)
    if overlap is None:
        overlap = model.receptive_radius
    s = out_scale
    out = torch.empty(n, 3, h * s, w * s, device=x.device)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
            yb, xb = min(y1 + overlap, h), min(x1 + overlap, w)
            part = forward(model, x[:, :, ya:yb, xa:xb])
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


def pad_to(x: torch.Tensor, multiple: int = 1, minimum: int = 1, square: bool = False):
    """Pad (N, C, h, w) at the bottom and right, by reflection where the image is big enough
    (else by replication), to sides that are multiples of `multiple` and at least `minimum`."""
    h, w = x.shape[-2:]
    th, tw = (-(-max(s, minimum) // multiple) * multiple for s in (h, w))
    if square:
        th = tw = max(th, tw)
    pad_h, pad_w = th - h, tw - w
    rh, rw = min(pad_h, h - 1), min(pad_w, w - 1)
    if rh or rw:
        x = nn.functional.pad(x, (0, rw, 0, rh), mode="reflect")
    if pad_h > rh or pad_w > rw:
        x = nn.functional.pad(x, (0, pad_w - rw, 0, pad_h - rh), mode="replicate")
    return x


class ExternalSR(nn.Module):
    """Any SR network seen as RGB [0, 1] NCHW -> RGB [0, 1] NCHW.

    Args:
        net: the network (an nn.Module, a TorchScript module or a torch.export module).
        convention: what `net` takes and returns (`sr_models.external.check_convention`).
        call: how to run it, `call(x)`; default `net(x)` (spandrel's descriptor for spandrel).
        size: (multiple, minimum, square), the input size rules, met by padding.
        per_image: run a batch image by image (a program exported with a static batch of 1).
    """

    def __init__(self, net, convention, call=None, size=(1, 1, False), per_image=False):
        super().__init__()
        self.net, self.call, self.convention = net, call, convention
        self.size_multiple, self.min_size, self.square = size
        self.per_image = per_image

    def train(self, mode: bool = True):
        self.training = mode
        try:
            self.net.train(mode)
        except NotImplementedError:  # torch.export modules have no train/eval switch
            pass
        return self

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        run = self.call or self.net
        if self.per_image and x.shape[0] > 1:
            return torch.cat([run(x[i : i + 1]) for i in range(x.shape[0])])
        return run(x)

    def forward(self, x: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        # x: (N, 3, h, w) RGB in [0, 1]
        h, w = x.shape[-2:]
        x = pad_to(x, self.size_multiple, self.min_size, self.square)
        if self.convention["channel_order"] == "bgr":
            x = x.flip(1)
        if self.convention["input_range"] == "-1,1":
            x = x * 2 - 1
        y = self._run(x)  # (N, C, s*H, s*W) in the net's convention
        if self.convention["output_range"] == "-1,1":
            y = (y + 1) / 2
        if self.convention["channel_order"] == "bgr":
            y = y.flip(1)
        if x.shape[-2:] != (h, w):
            y = y[..., : h * (y.shape[-2] // x.shape[-2]), : w * (y.shape[-1] // x.shape[-1])]
        return y.clamp(0, 1) if clamp else y


# Context around each tile of an external model, whose receptive radius is unknown: exact for
# conv nets of up to 16 3x3 layers at LR scale. Deeper nets see less context at tile edges than
# untiled (RRDBNet x4, 23 blocks, random weights, 48-pixel tiles: at most 1 grey level apart).
EXTERNAL_OVERLAP = 16
_HALF_OK: dict[str, bool] = {}


def half_supported(device: torch.device | str) -> bool:
    """Whether this torch build runs float16 convolutions on `device`'s kind."""
    kind = torch.device(device).type
    if kind not in _HALF_OK:
        try:
            x = torch.ones(1, 3, 4, 4, dtype=torch.float16, device=device)
            nn.functional.conv2d(x, torch.ones(3, 3, 3, 3, dtype=x.dtype, device=device))
            _HALF_OK[kind] = True
        except RuntimeError:
            _HALF_OK[kind] = False
    return _HALF_OK[kind]


def _plain_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)  # no channels_last, no autocast: an external net may rely on neither


def upscale_with(
    loaded,
    images: list[np.ndarray],
    scale: int,
    device: torch.device | str = "cpu",
    tile: int | None = DEFAULT_TILE,
    overlap: int = EXTERNAL_OVERLAP,
    half: bool = False,
    batch_size: int = 8,
) -> list[np.ndarray]:
    """Upscale RGB uint8 HxWx3 images by `scale` with an external model
    (`sr_models.external.LoadedModel`); exactly scale x each size, order kept.

    Equal-size images run together in batches of `batch_size` (on the CPU, of at most
    `CPU_BATCH_PIXELS` input pixels); images larger than `tile` run in tiles with `overlap`
    LR pixels of context (tile None: whole; a model that tiles internally is never tiled).
    `half` runs a float16 copy of the model on float16 input. Thread-safe (the model's lock).
    """
    if loaded.scale is not None and loaded.scale != scale:
        raise ValueError(f"model upscales x{loaded.scale}, asked for x{scale}")
    if half and not half_supported(device):
        raise ValueError(f"torch {torch.__version__} has no float16 convolution on {device}")
    for im in images:
        if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3 or min(im.shape[:2]) < 1:
            raise ValueError(f"expected RGB uint8 HxWx3 images, got {im.dtype} {im.shape}")
    if loaded.tiling == "internal":
        tile = None
    elif tile is not None:
        tile = -(-tile // loaded.size_multiple) * loaded.size_multiple
    groups: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(im.shape[:2], []).append(i)
    out: list[np.ndarray | None] = [None] * len(images)
    with loaded.lock:
        model = loaded.module_for(device, half)
        for (h, w), idx in groups.items():
            step = batch_size
            if torch.device(device).type == "cpu":
                step = max(1, min(batch_size, CPU_BATCH_PIXELS // (h * w)))
            for i in range(0, len(idx), step):
                x = to_tensor([images[j] for j in idx[i : i + step]])
                x = x.to(device, torch.float16 if half else torch.float32)
                y = run_tiled(model, x, scale, tile, overlap, forward=_plain_forward)
                if y.shape[-2:] != (h * scale, w * scale):
                    raise ValueError(
                        f"model returned {y.shape[-1]}x{y.shape[-2]} for a {w}x{h} input, "
                        f"not x{scale}"
                    )
                for j, sr in zip(idx[i : i + step], to_uint8(y, low=0.0), strict=True):
                    out[j] = sr
    return out
