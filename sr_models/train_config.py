"""The configuration of a training run: a typed dataclass stored in every checkpoint.

Its defaults are the paper's SRResNet schedule (Ledig et al. 2017, section 3.2): 96x96 HR crops,
batch 16, Adam (0.9, 0.999) at 1e-4 for 1e6 steps. Both the loop (`sr_models.train`) and the
run's state (`sr_models.train_state`) read it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from sr_models.degrade import KERNELS

CONTENT_LOSSES = ("mse", "vgg22", "vgg54")


@dataclass
class TrainConfig:
    name: str = "srresnet-mse"
    arch: str = "srresnet"  # srresnet | srcnn | espcn
    scale: int = 4
    generator: dict = field(default_factory=dict)  # fields of the arch's config dataclass
    train_dirs: list[str] = field(default_factory=lambda: ["../shared/data/T91/HR"])
    val_dir: str | None = None
    holdout: int = 5  # without val_dir: last N images of the last train dir, held out
    kernel: str = "matlab-bicubic"
    patch_size: int = 96  # HR crop side
    batch_size: int = 16
    steps: int = 1_000_000
    lr: float = 1e-4
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    content_loss: str = "mse"
    tv_weight: float = 0.0
    adv_weight: float = 0.0  # 1e-3 for SRGAN; > 0 adds the discriminator
    vgg_weights: str | None = None
    init_from: str | None = None  # generator checkpoint to start from (SRGAN from SRResNet)
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    amp: str = "none"  # "bf16": autocast forward passes to bfloat16 (losses stay float32)
    channels_last: bool = True
    log_every: int = 50
    val_every: int = 1000
    save_every: int = 500
    max_minutes: float | None = None  # stop (and save) after this much wall time in this run
    out_dir: str = "runs/srresnet-mse"

    def __post_init__(self):
        self.betas = tuple(self.betas)
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel {self.kernel!r}: choose one of {', '.join(KERNELS)}")
        if self.content_loss not in CONTENT_LOSSES:
            raise ValueError(
                f"content_loss {self.content_loss!r}: choose one of {', '.join(CONTENT_LOSSES)}"
            )
        if self.amp not in ("none", "bf16"):
            raise ValueError(f"amp {self.amp!r}: choose none or bf16")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        data = json.loads(Path(path).read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        return cls(**data)
