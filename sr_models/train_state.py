"""What a training run carries across steps and restarts.

The networks with their optimisers and learning-rate schedules (:class:`TrainNets`), the progress
counters (:class:`Progress`), and the training checkpoint that stores both with the config,
git revision and RNG states, so that :func:`sr_models.train.train` resumes exactly where it
stopped.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

from sr_models.checkpoint import (
    FORMAT,
    build_generator,
    git_revision,
    load_checkpoint,
    save_checkpoint,
)
from sr_models.discriminator import Discriminator, DiscriminatorConfig
from sr_models.train_config import TrainConfig


@dataclass
class TrainNets:
    """The generator and, when ``adv_weight > 0``, the discriminator, each with its optimiser
    and learning-rate schedule."""

    gen: nn.Module
    opt_g: torch.optim.Optimizer
    sched_g: MultiStepLR
    disc: Discriminator | None = None
    opt_d: torch.optim.Optimizer | None = None
    sched_d: MultiStepLR | None = None


@dataclass
class Progress:
    """How far a run has got; stored in every checkpoint, restored on resume."""

    step: int = 0
    wall: float = 0.0  # seconds of training steps only, see the end of the loop in train()
    val: dict | None = None
    best: float = -1.0  # best validation PSNR so far
    history: list = field(default_factory=list)  # [step, mean content loss since last log]


def build_nets(cfg: TrainConfig, device: torch.device) -> TrainNets:
    """The generator of ``cfg.arch``, plus the SRGAN discriminator when ``adv_weight > 0``."""
    gen = build_generator(cfg.arch, {**cfg.generator, "scale": cfg.scale}).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=cfg.betas)
    nets = TrainNets(gen, opt_g, MultiStepLR(opt_g, cfg.lr_milestones, cfg.lr_gamma))
    if cfg.adv_weight > 0:
        nets.disc = Discriminator(DiscriminatorConfig(input_size=cfg.patch_size)).to(device)
        nets.opt_d = torch.optim.Adam(nets.disc.parameters(), lr=cfg.lr, betas=cfg.betas)
        nets.sched_d = MultiStepLR(nets.opt_d, cfg.lr_milestones, cfg.lr_gamma)
    return nets


def resume(last: Path, cfg: TrainConfig, nets: TrainNets, rng: np.random.Generator) -> Progress:
    """Load weights, optimiser and schedule states and both RNG states from ``last``."""
    state = load_checkpoint(last)
    nets.gen.load_state_dict(state["model"])
    nets.opt_g.load_state_dict(state["optimizer"])
    nets.sched_g.load_state_dict(state["scheduler"])
    if nets.disc is not None:
        nets.disc.load_state_dict(state["disc"])
        nets.opt_d.load_state_dict(state["optimizer_d"])
        nets.sched_d.load_state_dict(state["scheduler_d"])
    # The config's schedule wins over the stored one, so a resumed run can be re-planned.
    for sched in (nets.sched_g, nets.sched_d):
        if sched is not None:
            replan_schedule(sched, cfg)
    prog = Progress(
        step=state["step"],
        wall=state["wall_time_s"],
        val=state["val"],
        best=state.get("best_psnr", -1.0),
        history=state.get("loss_history", []),
    )
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    print(f"resumed {last} at step {prog.step}", flush=True)
    return prog


def replan_schedule(sched: MultiStepLR, cfg: TrainConfig) -> None:
    """Give a restored schedule the config's milestones, gamma and base LR, and set the LR
    it implies at the step the schedule has reached."""
    sched.milestones = Counter(cfg.lr_milestones)
    sched.gamma = cfg.lr_gamma
    sched.base_lrs = [cfg.lr] * len(sched.base_lrs)
    passed = sum(1 for m in cfg.lr_milestones if m <= sched.last_epoch)
    for group in sched.optimizer.param_groups:
        group["lr"] = group["initial_lr"] = cfg.lr * cfg.lr_gamma**passed


def save_state(
    path: Path, cfg: TrainConfig, nets: TrainNets, prog: Progress, rng: np.random.Generator
) -> None:
    """Write a full training checkpoint: config, weights, optimisers, progress, RNG states."""
    state = {
        "format": FORMAT,
        "arch": cfg.arch,
        "model_config": dataclasses.asdict(nets.gen.config),
        "model": nets.gen.state_dict(),
        "train_config": dataclasses.asdict(cfg),
        "optimizer": nets.opt_g.state_dict(),
        "scheduler": nets.sched_g.state_dict(),
        "step": prog.step,
        "val": prog.val,
        "best_psnr": prog.best,
        "wall_time_s": prog.wall,
        "loss_history": prog.history,
        "git_rev": git_revision(),
        "torch_version": str(torch.__version__),
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }
    if nets.disc is not None:
        state.update(
            disc=nets.disc.state_dict(),
            optimizer_d=nets.opt_d.state_dict(),
            scheduler_d=nets.sched_d.state_dict(),
        )
    save_checkpoint(path, state)
