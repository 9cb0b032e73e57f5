"""Checkpoint files: build a generator from its stored config, save atomically, export.

A training checkpoint holds {"format", "arch", "model_config", "model", "train_config",
"optimizer", "step", "val", "git_rev", ...}; an exported (shipped) checkpoint keeps only the
generator weights, its config and a summary of how it was trained.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import torch
from torch import nn
from torch.torch_version import TorchVersion

from sr_models.atomic import atomic_file
from sr_models.errors import CheckpointError
from sr_models.espcn import ESPCN, ESPCNConfig
from sr_models.srcnn import SRCNN, SRCNNConfig
from sr_models.srresnet import SRResNet, SRResNetConfig

FORMAT = "srmos-sr/1"
ARCHS: dict[str, tuple[type[nn.Module], type]] = {
    "srresnet": (SRResNet, SRResNetConfig),
    "srcnn": (SRCNN, SRCNNConfig),
    "espcn": (ESPCN, ESPCNConfig),
}


def build_generator(arch: str, model_config: dict | None = None) -> nn.Module:
    """A fresh generator of architecture `arch` with config fields `model_config`."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    cls, cfg_cls = ARCHS[arch]
    try:
        cfg = cfg_cls(**(model_config or {}))
    except TypeError as exc:
        raise ValueError(f"bad {arch} config {model_config}: {exc}") from None
    return cls(cfg)


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write atomically (temp file + rename); any failure raises, never only logs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, resume="free space, then resume training from the last checkpoint") as f:
        torch.save(state, f)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found; train or export it first")
    try:
        # TorchVersion (a str subclass) is allowed for checkpoints written by older runs.
        with torch.serialization.safe_globals([TorchVersion]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}); re-export it"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not an sr_models checkpoint (format {FORMAT!r} expected); "
            "export it with python -m sr_models.train --export"
        )
    return state


def generator_from_checkpoint(path: str | Path, arch: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the generator stored in `path` (eval mode, CPU) and return it with the state."""
    state = load_checkpoint(path)
    if arch is not None and state["arch"] != arch:
        raise CheckpointError(
            f"{path}: checkpoint is a {state['arch']} model, not {arch}; give a {arch} checkpoint"
        )
    try:
        model = build_generator(state["arch"], state["model_config"])
        model.load_state_dict(state["model"])
    except (ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: weights do not fit the stored {state.get('arch')} config "
            f"({str(exc).splitlines()[0]}); re-export the checkpoint"
        ) from None
    return model.eval(), state


def export_generator(train_ckpt: str | Path, out_path: str | Path, name: str) -> Path:
    """Write the generator of a training checkpoint as a small shipped checkpoint."""
    state = load_checkpoint(train_ckpt)
    cfg = state.get("train_config", {})
    exported = {
        "format": FORMAT,
        "name": name,
        "arch": state["arch"],
        "model_config": state["model_config"],
        "model": {k: v.clone() for k, v in state["model"].items()},
        "trained": {
            "step": state.get("step"),
            "val": state.get("val"),
            "wall_time_s": state.get("wall_time_s"),
            "git_rev": state.get("git_rev"),
            "train_dirs": cfg.get("train_dirs"),
            "kernel": cfg.get("kernel"),
            "config_name": cfg.get("name"),
            "init_from": cfg.get("init_from"),
        },
    }
    save_checkpoint(out_path, exported)
    return Path(out_path)


def config_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
