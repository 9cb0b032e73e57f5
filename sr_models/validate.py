"""Checks an external model must pass before a campaign uses it (sr_models.external).

    >>> result = validate(load_model(path), expected_scale=4, device="cuda",
    ...                   memory_limit_bytes=8 << 30, check_half=True)
    >>> result.ok, result.problems, result.half_ok, result.half_note

The model runs on a seeded random 32x32 input and on odd 17x23 and 23x17 (WxH) inputs: each output
must have 3 channels, exactly `expected_scale` times the input's size ("model upscales x2, the
campaign needs x4"), no NaN or Inf, and must not be constant. Then one forward at the worker's
tile size (`tile` plus `EXTERNAL_OVERLAP` context on each side) measures peak memory: on CUDA
`torch.cuda.max_memory_allocated`; on the CPU the bytes of every tensor the forward allocates
and still holds, tracked operator by operator (a TorchDispatchMode; kernels' private scratch
space is not seen), plus the weights. Over `memory_limit_bytes` is a problem.

The float16 check (`check_half`) upscales a crop of scikit-image's astronaut, downscaled by
MATLAB bicubic, in float32 and in float16 (model and input), and compares their Y-channel PSNR
against the crop (sr_models.metrics.psnr, border of `scale` pixels cropped): half precision is
accepted when the two differ by less than `HALF_TOLERANCE_DB`. On the CPU it runs true float16
where this torch has float16 convolutions (2.x does, slowly); where it has none the check is
skipped (half_ok None) with a note.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sr_models.degrade import imresize
from sr_models.errors import CheckpointError
from sr_models.inference import EXTERNAL_OVERLAP, half_supported, upscale_with
from sr_models.metrics import psnr
from sr_models.model_cache import model_bytes

HALF_TOLERANCE_DB = 0.05
PROBE_SIZES = ((32, 32), (23, 17), (17, 23))  # (h, w); the first measures the scale
HALF_CROP = (slice(32, 128), slice(176, 272))  # 96x96 of the astronaut's hair and eyes


@dataclass
class Validation:
    """What validation found; `ok` when `problems` (one line each) is empty.

    `half_ok` is None when float16 was not checked; `peak_memory_bytes` is the peak of one
    forward at the tile size (None when untiled); `seconds` the time validation took.
    """

    ok: bool
    problems: list[str] = field(default_factory=list)
    scale: int | None = None
    architecture: str = ""
    parameters: int = 0
    half_ok: bool | None = None
    half_note: str = ""
    peak_memory_bytes: int | None = None
    seconds: float = 0.0


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"


def _check_output(y: torch.Tensor, h: int, w: int, scale: int | None) -> tuple[int | None, str]:
    """The scale an output shows and the problem with it ("" when none)."""
    if y.dim() != 4 or y.shape[1] != 3:
        return None, f"outputs shape {tuple(y.shape)}, not (N, 3, H, W) RGB"
    oh, ow = y.shape[-2:]
    shown = oh // h if oh % h == 0 and ow == w * (oh // h) else None
    if scale is not None and shown != scale:
        return shown, f"returns {ow}x{oh} for a {w}x{h} input, not x{scale}"
    if shown is None:
        return None, f"returns {ow}x{oh} for a {w}x{h} input, not a whole multiple of it"
    if not torch.isfinite(y).all():
        kind = "NaN" if torch.isnan(y).any() else "Inf"
        return shown, f"emits {kind} for a {w}x{h} input"
    if float(y.max() - y.min()) < 1 / 255:
        return shown, f"output is constant ({float(y.mean()):.3f}) for a {w}x{h} input"
    return shown, ""


def _run_probes(module, device, expected_scale: int) -> tuple[int | None, list[str]]:
    gen = torch.Generator().manual_seed(0)
    scale, problems = None, []
    for h, w in PROBE_SIZES:
        x = torch.rand(1, 3, h, w, generator=gen).to(device)
        try:
            with torch.inference_mode():
                y = module(x, clamp=False)
        except Exception as exc:
            problems.append(f"fails on a {w}x{h} input ({_error(exc)})")
            continue
        shown, problem = _check_output(y.float(), h, w, scale)
        if scale is None and shown is not None:
            scale = shown
            if shown != expected_scale:
                return scale, [f"model upscales x{shown}, the campaign needs x{expected_scale}"]
        if problem:
            problems.append(problem)
    return scale, problems


def probe_scale(module: torch.nn.Module, size: int = 32) -> int:
    """Scale measured by running `module` on one size x size input; raises what the run
    raises, or ValueError when the output is not a whole multiple of the input."""
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        y = module(x)
    oh, ow = y.shape[-2:]
    if oh % size or oh != ow:
        raise ValueError(f"returns {ow}x{oh} for a {size}x{size} input, not a whole multiple")
    return oh // size


class _AllocationTracker(TorchDispatchMode):
    """Peak bytes of the tensor storages operators allocate while it is active (CPU). A storage
    is counted from the first operator that returns it until Python frees it; `known` are the
    storages that existed before (weights, input), never counted."""

    def __init__(self, known):
        super().__init__()
        self.live = {t.untyped_storage().data_ptr(): 0 for t in known}
        self.current = self.peak = 0

    def _free(self, key):
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key)
        return out


def peak_memory(module, side: int, device) -> int:
    """Peak bytes of one forward of `module` on a side x side input, weights included."""
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1)).to(device)
    device = torch.device(device)
    with torch.inference_mode():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            module(x)
            torch.cuda.synchronize(device)
            grown = torch.cuda.max_memory_allocated(device) - before
        else:
            with _AllocationTracker([x, *module.state_dict().values()]) as tracker:
                module(x)
            grown = tracker.peak
    return grown + model_bytes(module)


def half_precision(loaded, scale: int, device="cpu") -> tuple[bool | None, str]:
    """(half_ok, note): float16 vs float32 PSNR on a natural image (see the module docstring)."""
    if loaded.supports_half is False:
        return False, f"spandrel marks {loaded.architecture} as unsafe in float16"
    if not half_supported(device):
        return None, f"not checked: torch {torch.__version__} has no float16 conv on {device}"
    from skimage.data import astronaut

    side = 96 // scale * scale
    hr = astronaut()[HALF_CROP][:side, :side]
    lr = imresize(hr, 1 / scale)
    sr32 = upscale_with(loaded, [lr], scale, device, tile=None)[0]
    try:
        sr16 = upscale_with(loaded, [lr], scale, device, tile=None, half=True)[0]
    except Exception as exc:
        return False, f"fails in float16 ({_error(exc)})"
    p32, p16 = (psnr(sr, hr, crop_border=scale) for sr in (sr32, sr16))
    gap = abs(p32 - p16) if np.isfinite(p32) or np.isfinite(p16) else 0.0
    figures = f"float16 PSNR {p16:.3f} dB, float32 {p32:.3f} dB (gap {gap:.3f} dB"
    if gap >= HALF_TOLERANCE_DB:
        return False, f"{figures}, limit {HALF_TOLERANCE_DB})"
    return True, f"{figures})"


def validate(
    loaded,
    expected_scale: int,
    *,
    device="cpu",
    memory_limit_bytes: int | None = None,
    tile: int | None = 192,
    check_half: bool = False,
) -> Validation:
    """Run the checks of the module docstring on `loaded` (a LoadedModel); set its scale.

    Never raises for a bad model: every finding is a line in `problems`.
    """
    start = time.perf_counter()
    result = Validation(ok=False, architecture=loaded.architecture, parameters=loaded.parameters)
    with loaded.lock:
        module = loaded.module_for(device)
        result.scale, result.problems = _run_probes(module, device, expected_scale)
        if not result.problems and tile is not None:
            side = tile + 2 * EXTERNAL_OVERLAP
            try:
                result.peak_memory_bytes = peak_memory(module, side, device)
            except Exception as exc:  # out of memory included
                result.problems.append(f"fails on a {side}x{side} tile ({_error(exc)})")
    peak = result.peak_memory_bytes
    if peak is not None and memory_limit_bytes is not None and peak > memory_limit_bytes:
        result.problems.append(
            f"needs {peak / 2**20:.1f} MiB for one {side}x{side} tile, over the limit of "
            f"{memory_limit_bytes / 2**20:.1f} MiB; use a smaller model or tile"
        )
    if not result.problems:
        loaded.scale = result.scale
        if check_half:
            result.half_ok, result.half_note = half_precision(loaded, result.scale, device)
    result.ok = not result.problems
    result.seconds = time.perf_counter() - start
    return result


def validate_or_raise(loaded, expected_scale: int, **options) -> Validation:
    """`validate`, raising CheckpointError (one line: the file and every problem) unless ok."""
    result = validate(loaded, expected_scale, **options)
    if not result.ok:
        raise CheckpointError(f"{loaded.path}: " + "; ".join(result.problems))
    return result
