"""Model files are data until proven otherwise: what a file holds, checked before torch reads it.

    >>> file_kind(path)   # "export", "torchscript", "state", "pickle" or "safetensors"
    >>> read_state(path)  # a state dict, read with torch.load(weights_only=True) or safetensors

torch reads .pt2, TorchScript and zip-based torch.save files with its own zip reader
(`torch._C.PyTorchFileReader`, miniz), which can see other bytes than Python's `zipfile` in the
same archive: given a member name twice, miniz finds the first copy and `zipfile` the last. So an
archive is refused unless both readers are bound to agree on it:

- it starts with a local file header and ends with its end-of-central-directory record (no bytes
  before or after it, where the two readers could look for the archive differently);
- no member name appears twice, every member's local header names what the central directory
  names, and no member's bytes overlap the next one's;
- torch's reader lists exactly the same members, all under one folder (torch's layout);
- every member's name is one that its writer (torch.save, torch.jit.save, torch.export.save)
  writes: a .pt2 with a stray or legacy member is refused (torch.export.load reads a legacy
  archive, whose pickles it would run, with Python's zipfile).

A .pt2 archive's payloads are then read with torch's reader, the bytes torch.export.load would
read: it is refused when any weight or constant is pickled (torch.export.load would unpickle it
without `weights_only`) or its example inputs do not load with `weights_only=True` (torch would
retry without). Pickles are only ever read here by `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch.torch_version import TorchVersion

from sr_models.errors import CheckpointError

_COMMON = r"byteorder|version|\.data/version|\.data/serialization_id"
# Member names (after the archive's folder) each writer writes, as torch 2.x lays them out.
LAYOUTS = {
    "state": re.compile(rf"(data\.pkl|{_COMMON}|\.format_version|\.storage_alignment|data/\d+)"),
    "torchscript": re.compile(
        rf"(data\.pkl|constants\.pkl|{_COMMON}|data/\d+|constants/\d+|extra/[^/]+"
        r"|code/__torch__(/[\w.]+)*\.py(\.debug_pkl)?)"
    ),
    "export": re.compile(
        rf"(archive_format|archive_version|{_COMMON}|models/model\.json|extra/[^/]+"
        r"|data/sample_inputs/model\.pt|data/weights/(model_weights_config\.json|weight_\d+)"
        r"|data/constants/(model_constants_config\.json|tensor_\w+))"
    ),
}
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # APPNOTE 4.3.7, 30 bytes


def _refuse(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: {what}; save it again with torch (no other zip tool)")


def _member(name: str) -> str:
    return name.partition("/")[2] or name  # as torch names it, without the archive's folder


def _check_zip(path: Path, z: zipfile.ZipFile) -> list[str]:
    """The central directory's names, once each checked against the member's local header."""
    infos = sorted(z.infolist(), key=lambda i: i.header_offset)
    names = [i.filename for i in infos]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _refuse(path, f"a zip archive holding {_member(twice[0])} twice")
    end = 0
    with open(path, "rb") as f:
        for info in infos:
            if info.header_offset < end:
                raise _refuse(
                    path, f"a zip archive whose member {_member(info.filename)} overlaps another"
                )
            f.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
            name = f.read(fields[9])
            if fields[0] != b"PK\x03\x04" or name != info.orig_filename.encode():
                raise _refuse(
                    path, f"a zip archive whose member {_member(info.filename)} is misnamed"
                )
            end = f.tell() + fields[10] + info.compress_size
    if not names or end > z.start_dir:
        raise _refuse(path, "a damaged zip archive")
    return names


def _zip_members(path: Path) -> list[str]:
    """Member names without the archive's folder, as both zip readers see them."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(-22, 2)
        tail = f.read(22)
    # No comment and nothing after the end record: both readers then take the same record.
    if head != b"PK\x03\x04" or tail[:4] != b"PK\x05\x06" or tail[20:22] != b"\0\0":
        if not zipfile.is_zipfile(path):
            raise _refuse(path, "a damaged zip archive")
        raise _refuse(path, "a zip archive with data before or after it")
    with zipfile.ZipFile(path) as z:
        names = _check_zip(path, z)
    folder = names[0].split("/")[0] + "/"
    if not all(n.startswith(folder) and len(n) > len(folder) for n in names):
        raise _refuse(path, "a zip archive whose members are not in one folder")
    members = [n[len(folder) :] for n in names]
    if sorted(torch._C.PyTorchFileReader(str(path)).get_all_records()) != sorted(members):
        raise _refuse(path, "a zip archive that torch and Python read differently")
    return members


def _archive_kind(path: Path, members: list[str]) -> str:
    if "archive_format" in members:
        kind = "export"
    elif "constants.pkl" in members or any(m.startswith("code/") for m in members):
        kind = "torchscript"
    elif "data.pkl" in members:
        kind = "state"
    else:
        raise CheckpointError(
            f"{path}: a zip archive, not a PyTorch one (a legacy torch.export archive is not "
            "read: save it again with torch.export.save)"
        )
    stray = [m for m in members if not LAYOUTS[kind].fullmatch(m)]
    if stray:
        writer = {"state": "torch.save", "torchscript": "torch.jit.save"}.get(kind, "torch.export")
        raise _refuse(path, f"a {writer} archive holding an unexpected member {stray[0]}")
    return kind


def file_kind(path: str | Path) -> str:
    """What `path` holds: "export", "torchscript", "state" (a zip written by torch.save),
    "pickle" (a legacy torch.save file) or "safetensors". CheckpointError for anything else,
    or for an archive refused as the module docstring says."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(9)
    if head[:2] == b"PK" or zipfile.is_zipfile(path):
        try:
            return _archive_kind(path, _zip_members(path))
        except (zipfile.BadZipFile, OSError, RuntimeError, struct.error, ValueError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise _refuse(path, f"a damaged zip archive ({type(exc).__name__})") from None
    if head[8:9] == b"{" or path.suffix == ".safetensors":
        return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    raise CheckpointError(
        f"{path}: not a model file (neither a PyTorch, TorchScript, torch.export nor "
        "safetensors file); upload the model's weights file"
    )


def read_state(path: Path, kind: str | None = None):
    """A state dict or checkpoint, read without running pickled code."""
    kind = kind or file_kind(path)
    if kind in ("export", "torchscript"):
        raise CheckpointError(
            f"{path}: a {kind} file, not a state dict; register it with route {kind} (or auto)"
        )
    if kind == "safetensors":
        try:
            return load_file(path, device="cpu")
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        with torch.serialization.safe_globals([TorchVersion]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if found := re.search(r"GLOBAL (\S+)", str(exc)):
            raise CheckpointError(
                f"{path}: holds pickled Python objects ({found.group(1)}), not only tensors; "
                "save the weights alone: torch.save(model.state_dict(), path)"
            ) from None
        why = " ".join(str(exc).split())[:80] or type(exc).__name__
        raise CheckpointError(
            f"{path}: unreadable PyTorch file ({type(exc).__name__}: {why}); upload it again"
        ) from None


def _pickled_payload(config, plain: re.Pattern) -> str | None:
    """The first entry of a payload config that torch.export.load would unpickle (or that is
    not the plain tensor file it should be)."""
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        return "no config object"
    for key, entry in entries.items():
        name = entry.get("path_name", "") if isinstance(entry, dict) else ""
        if not isinstance(entry, dict) or entry.get("use_pickle") or not plain.fullmatch(name):
            return f"{key} ({name or 'no file'})"
    return None


def check_export_payloads(path: Path) -> None:
    """Refuse a .pt2 (already through `file_kind`) that torch.export.load would unpickle from."""
    reader = torch._C.PyTorchFileReader(str(path))  # the bytes torch.export.load reads
    payloads = {
        "data/weights/model_weights_config.json": re.compile(r"weight_\d+"),
        "data/constants/model_constants_config.json": re.compile(r"tensor_\w+"),
    }
    for member, plain in payloads.items():
        try:
            config = json.loads(reader.get_record(member))
        except (RuntimeError, ValueError):  # missing, or not JSON
            raise CheckpointError(
                f"{path}: not a torch.export file ({member} unreadable)"
            ) from None
        if pickled := _pickled_payload(config, plain):
            raise CheckpointError(
                f"{path}: {member} holds pickled Python objects, which torch.export.load would "
                f"run ({pickled}); export weights and constants as plain tensors"
            )
    try:
        torch.load(io.BytesIO(reader.get_record("data/sample_inputs/model.pt")), weights_only=True)
    except Exception:  # torch.export.load would retry without weights_only
        raise CheckpointError(
            f"{path}: data/sample_inputs/model.pt (the example inputs) holds pickled Python "
            "objects, which torch.export.load would run; export with plain tensors as inputs"
        ) from None
