"""Researchers' own super-resolution networks: load one file and describe it.

    >>> loaded = load_model("4x_foo.pth")            # route detected from the file
    >>> loaded.architecture, loaded.scale, loaded.parameters, loaded.sha256
    >>> sr = upscale_with(loaded, [lr], 4, "cuda")[0]  # sr_models.inference; HxWx3 uint8 in/out

Routes (`load_model(path, route)`; `route=None` detects it from the file's contents):
  spandrel     a state dict (.pth/.pt/.ckpt/.safetensors) of an architecture spandrel knows
               (`spandrel_architectures()`), which reads scale and size rules from the weights.
  torchscript  an archive written by `torch.jit.save`.
  export       a `torch.export.save` program (.pt2) with dynamic height and width (an example
               batch of 2 keeps the batch dynamic too; a static batch runs image by image).
  class        `class_path` "package.module:Class" importable here, built with `kwargs`, loaded
               with the state dict in `path`.
  srmos        this project's checkpoint (sr_models.checkpoint, format "srmos-sr/1").

What runs code: nothing before `sr_models.model_files.file_kind` has checked the file (an
archive both torch's and Python's zip readers read alike, holding only the members its writer
writes). State dicts are read with `torch.load(weights_only=True)` or safetensors (spandrel's
own reader, an allow-list unpickler, is not used). TorchScript deserialises TorchScript (torch
operators, no Python). `torch.export.load` would fully unpickle pickled weights, constants or
example inputs, so an archive naming any is refused. The "class" route imports the researcher's
module, which runs whatever that module runs.

Every model is wrapped (sr_models.inference.ExternalSR) to take and return RGB float [0, 1]
NCHW, applying the convention {"input_range": "0,1" | "-1,1", "channel_order": "rgb" | "bgr",
"output_range": "0,1" | "-1,1"} (declared for class, torchscript and export models; known for
the others) and padding inputs to its size rules. Every failure to load
raises CheckpointError (a ValueError): one line naming the file and what to do.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sr_models.checkpoint import FORMAT, generator_from_checkpoint
from sr_models.errors import CheckpointError
from sr_models.inference import ExternalSR, upscale_with  # noqa: F401  (this module's API)
from sr_models.model_files import check_export_payloads, file_kind, read_state
from sr_models.validate import probe_scale

ROUTES = ("spandrel", "torchscript", "export", "class", "srmos")
STANDARD_CONVENTION = {"input_range": "0,1", "channel_order": "rgb", "output_range": "0,1"}
_ALLOWED = {"input_range": ("0,1", "-1,1"), "channel_order": ("rgb", "bgr")}
_ALLOWED["output_range"] = _ALLOWED["input_range"]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks of `chunk` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def spandrel_architectures() -> list[str]:
    """Names of the architectures spandrel detects, in its registry's order."""
    from spandrel import MAIN_REGISTRY

    return [a.architecture.name for a in MAIN_REGISTRY.architectures("insertion")]


def check_convention(convention: dict | None, path: Path | str = "") -> dict:
    """The convention with defaults filled in and values normalised ("[-1, 1]" -> "-1,1")."""
    out = dict(STANDARD_CONVENTION)
    for key, value in (convention or {}).items():
        value = "".join(str(value).lower().split()).strip("[]()")
        if value not in _ALLOWED.get(key, ()):
            fix = " or ".join(_ALLOWED[key]) if key in _ALLOWED else "keys " + ", ".join(_ALLOWED)
            raise CheckpointError(f"{path}: convention {key} {value!r} not understood; use {fix}")
        out[key] = value
    return out


@dataclass
class LoadedModel:
    """A loaded external model and what is known of it.

    `module` is an `ExternalSR` in eval mode (float32, CPU until `upscale_with` moves it);
    `scale` is None when no run could measure it (validation reports why, and sets it);
    `size_multiple`, `min_size`, `tiling` ("supported", "discouraged" or "internal") and
    `supports_half` (None: unknown) are spandrel's hints; `sha256` is the file's hash.
    """

    module: ExternalSR
    route: str
    architecture: str
    scale: int | None
    parameters: int
    convention: dict
    size_multiple: int = 1
    min_size: int = 1
    tiling: str = "supported"
    supports_half: bool | None = None
    sha256: str = ""
    path: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    half_module: ExternalSR | None = field(default=None, repr=False, compare=False)

    def module_for(self, device: torch.device | str, half: bool = False) -> ExternalSR:
        """The module on `device`, or a float16 copy (a round trip would round the weights)."""
        if not half:
            return self.module.to(device)
        if self.half_module is None:
            with torch.no_grad():  # a TorchScript copy's parameters would be non-leaf
                self.half_module = copy.deepcopy(self.module).half()
        return self.half_module.to(device)


@dataclass
class _Found:
    """What a route learnt from the file, before wrapping."""

    net: nn.Module
    architecture: str
    convention: dict = field(default_factory=lambda: dict(STANDARD_CONVENTION))
    call: object = None
    scale: int | None = None
    size: tuple[int, int, bool] = (1, 1, False)  # multiple, minimum, square
    tiling: str = "supported"
    supports_half: bool | None = None
    per_image: bool = False


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:limit]}"


def detect_route(path: Path, kind: str | None = None) -> tuple[str, object]:
    """The route for `path` from its contents, and the state dict when one was read."""
    kind = kind or file_kind(path)
    if kind in ("torchscript", "export"):
        return kind, None
    state = read_state(path, kind)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        return "srmos", state
    return "spandrel", state


def _detects(arch, state: dict) -> bool:
    try:  # a detector may read shapes of keys a state dict of another kind lacks
        return bool(arch.detect(state))
    except Exception:
        return False


def _spandrel(path: Path, state) -> _Found:
    from spandrel import MAIN_REGISTRY, ImageModelDescriptor, canonicalize_state_dict

    state = read_state(path) if state is None else state
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: not a state dict; save model.state_dict() with torch.save")
    state = canonicalize_state_dict(state)
    arch = next((a for a in MAIN_REGISTRY.architectures("detection") if _detects(a, state)), None)
    if arch is None:
        keys = ", ".join(list(state)[:3])
        raise CheckpointError(
            f"{path}: not a super-resolution model spandrel knows (keys {keys}, ...); supported: "
            f"{', '.join(spandrel_architectures())}; or register it with a class path"
        )
    try:
        desc = arch.architecture.load(state)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: looks like {arch.architecture.name} but does not load ({_first_line(exc)}); "
            "register it with a class path"
        ) from None
    name = desc.architecture.name
    if not isinstance(desc, ImageModelDescriptor) or desc.purpose == "FaceSR":
        raise CheckpointError(f"{path}: a {name} {desc.purpose} model, not a super-resolution one")
    if desc.input_channels != 3 or desc.output_channels != 3:
        channels = f"{desc.input_channels}-to-{desc.output_channels}-channel"
        raise CheckpointError(f"{path}: a {channels} {name} model; only RGB models can be studied")
    req = desc.size_requirements
    return _Found(
        net=desc.model.eval(),
        architecture=name,
        call=desc,  # pads to size requirements (already met), runs, clamps to [0, 1]
        scale=desc.scale,
        size=(req.multiple_of, max(req.minimum, 1), req.square),
        tiling=desc.tiling.name.lower(),
        supports_half=desc.supports_half,
    )


def _torchscript(path: Path, kind: str) -> _Found:
    if kind != "torchscript":
        raise CheckpointError(f"{path}: not a TorchScript file; write one with torch.jit.save")
    try:
        net = torch.jit.load(path, map_location="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path}: not a TorchScript file ({_first_line(exc)})") from None
    return _Found(net=net.eval(), architecture=getattr(net, "original_name", "TorchScript"))


def _export(path: Path, kind: str) -> _Found:
    if kind != "export":
        raise CheckpointError(f"{path}: not a torch.export file; write one with torch.export.save")
    check_export_payloads(path)
    try:
        program = torch.export.load(path)
        net = program.module()
    except Exception as exc:
        raise CheckpointError(f"{path}: not a torch.export file ({_first_line(exc)})") from None
    inputs = program.graph_signature.user_inputs
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    val = nodes[inputs[0]].meta.get("val") if len(inputs) == 1 else None
    if val is None or val.dim() != 4:
        raise CheckpointError(f"{path}: the export must take one (N, 3, H, W) tensor")
    if isinstance(val.shape[2], int) or isinstance(val.shape[3], int):
        raise CheckpointError(
            f"{path}: exported for {val.shape[3]}x{val.shape[2]} inputs only; re-export with "
            "dynamic height and width (dynamic_shapes with torch.export.Dim)"
        )
    batch = val.shape[0]  # an int when static: torch specialises an example batch of 1
    if isinstance(batch, int) and batch != 1:
        raise CheckpointError(f"{path}: exported for batches of {batch} only; re-export with 1")
    return _Found(net=net, architecture="torch.export program", per_image=isinstance(batch, int))


def _class(path: Path, class_path: str | None, kwargs) -> _Found:
    if not class_path:
        raise CheckpointError(f"{path}: the class route needs a class path (package.module:Class)")
    module_name, _, name = class_path.replace(":", ".").rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: class {class_path} is not importable ({_first_line(exc)}); install its "
            "package where the workers run"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckpointError(f"{path}: {class_path} is not a torch.nn.Module class")
    try:
        kwargs = json.loads(kwargs) if isinstance(kwargs, str) else dict(kwargs or {})
        net = cls(**kwargs)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: {name}(**{kwargs}) fails ({_first_line(exc)}); fix the constructor kwargs"
        ) from None
    from spandrel import canonicalize_state_dict

    state = read_state(path)
    try:
        net.load_state_dict(canonicalize_state_dict(state))
    except Exception as exc:
        raise CheckpointError(
            f"{path}: the weights do not fit {name}(**{kwargs}) ({_first_line(exc)}); "
            "check the class and kwargs"
        ) from None
    return _Found(net=net.eval(), architecture=name)


def _srmos(path: Path) -> _Found:
    model, state = generator_from_checkpoint(path)
    if getattr(model, "upscales_input", False):
        raise CheckpointError(
            f"{path}: a {state['arch']} model takes bicubic-upscaled input; run it as a "
            "built-in method (sr_models.methods.method_from_checkpoint)"
        )
    model = model.fused() if hasattr(model, "fused") else model
    convention = {**STANDARD_CONVENTION, "output_range": "-1,1"}
    return _Found(net=model.eval(), architecture=state["arch"], convention=convention,
                  scale=model.config.scale)  # fmt: skip


def load_model(
    path: str | Path,
    route: str | None = None,
    *,
    class_path: str | None = None,
    kwargs: dict | str | None = None,
    convention: dict | None = None,
    scale: int | None = None,
) -> LoadedModel:
    """Load the model in `path` by `route` (see the module docstring), wrapped and described.

    `kwargs` (a dict or a JSON object) is for the "class" route; `convention` for the class,
    torchscript and export routes (default RGB [0, 1] in and out). `scale`, when given, must
    match the scale the model shows: the file's (spandrel, srmos) or a probe run's (the others,
    on a 32x32 input; a failing probe leaves it to validation).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found; check the path or upload it again")
    kind = file_kind(path)  # before torch reads anything, whatever the route
    state = None
    if route is None:
        route, state = detect_route(path, kind)
    if route not in ROUTES:
        raise CheckpointError(f"{path}: unknown route {route!r}; use one of {', '.join(ROUTES)}")
    found = {
        "spandrel": lambda: _spandrel(path, state),
        "torchscript": lambda: _torchscript(path, kind),
        "export": lambda: _export(path, kind),
        "class": lambda: _class(path, class_path, kwargs),
        "srmos": lambda: _srmos(path),
    }[route]()
    conv = declared = check_convention(convention, path)
    if route in ("spandrel", "srmos"):  # their convention is known
        conv = found.convention
        if convention is not None and declared != conv:
            raise CheckpointError(f"{path}: a {route} model's convention is {conv}; declare none")
    module = ExternalSR(found.net, conv, found.call, found.size, found.per_image).eval()
    shown = found.scale
    if shown is None:
        try:
            shown = probe_scale(module)
        except Exception:  # validation reports a failing run, naming the input size
            shown = None
    if scale is not None and shown is not None and shown != scale:
        raise CheckpointError(f"{path}: model upscales x{shown}, not the declared x{scale}")
    return LoadedModel(
        module=module,
        route=route,
        architecture=found.architecture,
        scale=shown if shown is not None else scale,
        parameters=sum(p.numel() for p in found.net.parameters()),
        convention=conv,
        size_multiple=found.size[0],
        min_size=found.size[1],
        tiling=found.tiling,
        supports_half=found.supports_half,
        sha256=sha256_file(path),
        path=path,
    )
