"""Train a generator: SRResNet-MSE pre-training, SRGAN fine-tuning (content + 1e-3 adversarial),
or the SRCNN/ESPCN baselines.

    python -m sr_models.train CONFIG.json            # train (resumes from OUT_DIR/last.pt)
    python -m sr_models.train CONFIG.json --fresh    # ignore an existing last.pt
    python -m sr_models.train --export RUN/last.pt OUT.pt --name srresnet-mse

The defaults of `TrainConfig` are the paper's SRResNet schedule (Ledig et al. 2017, section
3.2): 96x96 HR crops, batch 16, Adam (0.9, 0.999) at 1e-4 for 1e6 steps. Every checkpoint
stores the config, weights, optimiser state, step, validation PSNR/SSIM and git revision.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sr_models.checkpoint import (
    FORMAT,
    build_generator,
    export_generator,
    generator_from_checkpoint,
    git_revision,
    load_checkpoint,
    save_checkpoint,
)
from sr_models.data import PatchSampler, load_pairs, split_paths
from sr_models.degrade import KERNELS
from sr_models.discriminator import Discriminator, DiscriminatorConfig
from sr_models.inference import upscale_images
from sr_models.losses import VGGLoss, adversarial_g_loss, discriminator_loss, mse_loss, tv_loss
from sr_models.metrics import psnr, ssim

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


@torch.no_grad()
def validate(model, pairs, scale: int, device) -> dict:
    """Mean PSNR/SSIM (Y, crop `scale`) of the model on (LR, HR) pairs."""
    model.eval()
    ps, ss = [], []
    for lr, hr in pairs:
        sr = upscale_images(model, [lr], scale, device)[0]
        ps.append(psnr(sr, hr, crop_border=scale))
        ss.append(ssim(sr, hr, crop_border=scale))
    model.train()
    return {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss))}


def train(cfg: TrainConfig, fresh: bool = False) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = out_dir / "last.pt"

    gen = build_generator(cfg.arch, {**cfg.generator, "scale": cfg.scale}).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=cfg.betas)
    sched_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, cfg.lr_milestones, cfg.lr_gamma)
    disc = opt_d = sched_d = None
    if cfg.adv_weight > 0:
        disc = Discriminator(DiscriminatorConfig(input_size=cfg.patch_size)).to(device)
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=cfg.betas)
        sched_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, cfg.lr_milestones, cfg.lr_gamma)
    content = (
        mse_loss
        if cfg.content_loss == "mse"
        else VGGLoss(cfg.content_loss, cfg.vgg_weights).to(device)
    )

    rng = np.random.default_rng(cfg.seed)
    step, wall, val, best, history = 0, 0.0, None, -1.0, []
    if last.exists() and not fresh:
        state = load_checkpoint(last)
        gen.load_state_dict(state["model"])
        opt_g.load_state_dict(state["optimizer"])
        sched_g.load_state_dict(state["scheduler"])
        if disc is not None:
            disc.load_state_dict(state["disc"])
            opt_d.load_state_dict(state["optimizer_d"])
            sched_d.load_state_dict(state["scheduler_d"])
        # The config's schedule wins over the stored one, so a resumed run can be re-planned.
        for sched in (sched_g, sched_d):
            if sched is not None:
                sched.milestones = Counter(cfg.lr_milestones)
                sched.gamma = cfg.lr_gamma
                sched.base_lrs = [cfg.lr] * len(sched.base_lrs)
                passed = sum(1 for m in cfg.lr_milestones if m <= sched.last_epoch)
                for group in sched.optimizer.param_groups:
                    group["lr"] = group["initial_lr"] = cfg.lr * cfg.lr_gamma**passed
        step, wall, val = state["step"], state["wall_time_s"], state["val"]
        best = state.get("best_psnr", -1.0)
        history = state.get("loss_history", [])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed {last} at step {step}", flush=True)
    elif cfg.init_from:
        init, _ = generator_from_checkpoint(cfg.init_from, cfg.arch)
        gen.load_state_dict(init.state_dict())
        print(f"initialised generator from {cfg.init_from}", flush=True)

    train_paths, val_paths = split_paths(cfg.train_dirs, cfg.val_dir, cfg.holdout)
    sampler = PatchSampler(
        load_pairs(train_paths, cfg.scale, cfg.kernel),
        cfg.scale,
        cfg.patch_size,
        upscale_input=getattr(gen, "upscales_input", False),
    )
    val_pairs = load_pairs(val_paths, cfg.scale, cfg.kernel)
    print(
        f"{cfg.name}: {len(sampler.pairs)} training images, {len(val_pairs)} validation images, "
        f"{sum(p.numel() for p in gen.parameters())} generator parameters",
        flush=True,
    )

    def checkpoint(path: Path):
        state = {
            "format": FORMAT,
            "arch": cfg.arch,
            "model_config": dataclasses.asdict(gen.config),
            "model": gen.state_dict(),
            "train_config": dataclasses.asdict(cfg),
            "optimizer": opt_g.state_dict(),
            "scheduler": sched_g.state_dict(),
            "step": step,
            "val": val,
            "best_psnr": best,
            "wall_time_s": wall,
            "loss_history": history,
            "git_rev": git_revision(),
            "torch_version": str(torch.__version__),
            "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }
        if disc is not None:
            state.update(
                disc=disc.state_dict(),
                optimizer_d=opt_d.state_dict(),
                scheduler_d=sched_d.state_dict(),
            )
        save_checkpoint(path, state)

    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    gen.to(memory_format=fmt)
    if disc is not None:
        disc.to(memory_format=fmt)

    def autocast():
        if cfg.amp == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    gen.train()
    t_run = time.time()
    t_last = time.time()
    window: list[float] = []
    bar = tqdm(total=cfg.steps, initial=step, desc=cfg.name, mininterval=30, file=sys.stderr)
    while step < cfg.steps:
        lr_t, hr_t = sampler.sample(cfg.batch_size, rng)
        lr_t, hr_t = lr_t.to(device, memory_format=fmt), hr_t.to(device, memory_format=fmt)
        with autocast():
            sr = gen(lr_t)
            fake_logits = disc(sr) if disc is not None else None
        sr = sr.float()
        loss_c = content(sr, hr_t)
        loss = loss_c + (cfg.tv_weight * tv_loss(sr) if cfg.tv_weight else 0.0)
        logs = {"content": loss_c.item()}
        if disc is not None:
            loss_adv = adversarial_g_loss(fake_logits.float())
            loss = loss + cfg.adv_weight * loss_adv
            logs["adv"] = loss_adv.item()
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        sched_g.step()
        if disc is not None:
            # Alternate updates (k = 1): D sees the generator output of this step.
            with autocast():
                real_logits, fake_logits = disc(hr_t), disc(sr.detach())
            loss_d = discriminator_loss(real_logits.float(), fake_logits.float())
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            sched_d.step()
            logs["d"] = loss_d.item()
        step += 1
        now = time.time()
        wall += now - t_last
        t_last = now
        bar.update(1)
        window.append(logs["content"])
        if step % cfg.log_every == 0 or step == 1:
            history.append([step, float(np.mean(window))])
            window.clear()
            parts = " ".join(f"{k} {v:.5f}" for k, v in logs.items())
            tqdm.write(
                f"step {step} {parts} lr {sched_g.get_last_lr()[0]:.2e} "
                f"{step / max(wall, 1e-9):.3f} steps/s (cumulative)",
                file=sys.stdout,
            )
            sys.stdout.flush()
        timeout = cfg.max_minutes is not None and now - t_run > cfg.max_minutes * 60
        if val_pairs and (step % cfg.val_every == 0 or step == cfg.steps or timeout):
            val = validate(gen, val_pairs, cfg.scale, device)
            tqdm.write(f"step {step} val psnr {val['psnr']:.3f} ssim {val['ssim']:.4f}")
            sys.stdout.flush()
            if val["psnr"] > best:
                best = val["psnr"]
                checkpoint(out_dir / "best.pt")
        if step % cfg.save_every == 0 or step == cfg.steps or timeout:
            checkpoint(last)
        if timeout:
            tqdm.write(f"stopping after max_minutes={cfg.max_minutes} at step {step}")
            break
        t_last = time.time()  # validation and saving do not count as training time
    bar.close()
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sr_models.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", type=Path, help="JSON file of TrainConfig fields")
    parser.add_argument("--fresh", action="store_true", help="do not resume from last.pt")
    parser.add_argument(
        "--export",
        nargs=2,
        metavar=("TRAIN_CKPT", "OUT"),
        help="write the generator of a training checkpoint as a shipped file",
    )
    parser.add_argument("--name", help="method name stored in an exported checkpoint")
    args = parser.parse_args(argv)
    try:
        if args.export:
            src, out = args.export
            path = export_generator(src, out, args.name or Path(out).stem)
            print(f"exported {src} -> {path} ({path.stat().st_size / 1e6:.2f} MB)")
            return 0
        if args.config is None:
            parser.error("give a CONFIG.json (or --export)")
        cfg = TrainConfig.from_json(args.config)
        train(cfg, fresh=args.fresh)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
