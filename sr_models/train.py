"""Train a generator: SRResNet-MSE pre-training, SRGAN fine-tuning (content + 1e-3 adversarial),
or the SRCNN/ESPCN baselines.

    python -m sr_models.train CONFIG.json            # train (resumes from OUT_DIR/last.pt)
    python -m sr_models.train CONFIG.json --fresh    # ignore an existing last.pt
    python -m sr_models.train --export RUN/last.pt OUT.pt --name srresnet-mse

The defaults of `TrainConfig` (sr_models.train_config) are the paper's SRResNet schedule (Ledig
et al. 2017, section 3.2): 96x96 HR crops, batch 16, Adam (0.9, 0.999) at 1e-4 for 1e6 steps.
Every checkpoint stores the config, weights, optimiser state, step, validation PSNR/SSIM and git
revision.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR
from tqdm import tqdm

from sr_models.checkpoint import export_generator, generator_from_checkpoint
from sr_models.data import PatchSampler, load_pairs, split_paths
from sr_models.inference import upscale_images
from sr_models.losses import VGGLoss, adversarial_g_loss, discriminator_loss, mse_loss, tv_loss
from sr_models.metrics import psnr, ssim
from sr_models.train_config import TrainConfig
from sr_models.train_state import Progress, TrainNets, build_nets, resume, save_state


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
    """Train until ``cfg.steps`` (or ``cfg.max_minutes``); returns the path of ``last.pt``.

    Resumes from ``OUT_DIR/last.pt`` unless ``fresh``; validates every ``val_every`` steps (keeping
    the best PSNR in ``best.pt``) and saves every ``save_every`` steps and at the end.
    """
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = out_dir / "last.pt"

    nets = build_nets(cfg, device)
    content = _content_loss(cfg, device)
    rng = np.random.default_rng(cfg.seed)
    prog = _start(last, fresh, cfg, nets, rng)
    sampler, val_pairs = _load_data(cfg, nets.gen)

    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    nets.gen.to(memory_format=fmt)
    if nets.disc is not None:
        nets.disc.to(memory_format=fmt)

    nets.gen.train()
    t_run = time.time()
    t_last = time.time()
    window: list[float] = []
    bar = tqdm(total=cfg.steps, initial=prog.step, desc=cfg.name, mininterval=30, file=sys.stderr)
    while prog.step < cfg.steps:
        lr_t, hr_t = sampler.sample(cfg.batch_size, rng)
        lr_t, hr_t = lr_t.to(device, memory_format=fmt), hr_t.to(device, memory_format=fmt)
        sr, logs = _generator_step(cfg, nets, content, lr_t, hr_t, device)
        if nets.disc is not None:
            logs["d"] = _discriminator_step(cfg, nets, sr, hr_t, device)
        prog.step += 1
        now = time.time()
        prog.wall += now - t_last
        t_last = now
        bar.update(1)
        window.append(logs["content"])
        if prog.step % cfg.log_every == 0 or prog.step == 1:
            prog.history.append([prog.step, float(np.mean(window))])
            window.clear()
            _log_step(prog, logs, nets.sched_g)
        timeout = cfg.max_minutes is not None and now - t_run > cfg.max_minutes * 60
        if val_pairs and (prog.step % cfg.val_every == 0 or prog.step == cfg.steps or timeout):
            prog.val = validate(nets.gen, val_pairs, cfg.scale, device)
            tqdm.write(
                f"step {prog.step} val psnr {prog.val['psnr']:.3f} ssim {prog.val['ssim']:.4f}"
            )
            sys.stdout.flush()
            if prog.val["psnr"] > prog.best:
                prog.best = prog.val["psnr"]
                save_state(out_dir / "best.pt", cfg, nets, prog, rng)
        if prog.step % cfg.save_every == 0 or prog.step == cfg.steps or timeout:
            save_state(last, cfg, nets, prog, rng)
        if timeout:
            tqdm.write(f"stopping after max_minutes={cfg.max_minutes} at step {prog.step}")
            break
        t_last = time.time()  # validation and saving do not count as training time
    bar.close()
    return last


def _content_loss(cfg: TrainConfig, device: torch.device):
    """Pixel MSE, or the VGG feature loss of Ledig et al. (2017) that ``content_loss`` names."""
    if cfg.content_loss == "mse":
        return mse_loss
    return VGGLoss(cfg.content_loss, cfg.vgg_weights).to(device)


def _start(
    last: Path, fresh: bool, cfg: TrainConfig, nets: TrainNets, rng: np.random.Generator
) -> Progress:
    """Resume from ``last`` when it exists (and not ``fresh``); else start at step 0, with the
    generator of ``cfg.init_from`` when given (SRGAN starts from a trained SRResNet)."""
    if last.exists() and not fresh:
        return resume(last, cfg, nets, rng)
    if cfg.init_from:
        init, _ = generator_from_checkpoint(cfg.init_from, cfg.arch)
        nets.gen.load_state_dict(init.state_dict())
        print(f"initialised generator from {cfg.init_from}", flush=True)
    return Progress()


def _load_data(cfg: TrainConfig, gen: nn.Module) -> tuple[PatchSampler, list]:
    """The training patch sampler and the (LR, HR) validation pairs; prints their sizes."""
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
    return sampler, val_pairs


def _autocast(cfg: TrainConfig, device: torch.device):
    """bfloat16 autocast of the forward passes when ``cfg.amp == "bf16"``, else a no-op."""
    if cfg.amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _generator_step(
    cfg: TrainConfig,
    nets: TrainNets,
    content: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lr_t: torch.Tensor,
    hr_t: torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One generator update on a batch; returns the SR batch (float32) and the step's losses.

    Loss: content + ``tv_weight`` * TV + ``adv_weight`` * adversarial (the last with a
    discriminator only).
    """
    with _autocast(cfg, device):
        sr = nets.gen(lr_t)  # (B, 3, H, W)
        fake_logits = nets.disc(sr) if nets.disc is not None else None
    sr = sr.float()
    loss_c = content(sr, hr_t)
    loss = loss_c + (cfg.tv_weight * tv_loss(sr) if cfg.tv_weight else 0.0)
    logs = {"content": loss_c.item()}
    if nets.disc is not None:
        loss_adv = adversarial_g_loss(fake_logits.float())
        loss = loss + cfg.adv_weight * loss_adv
        logs["adv"] = loss_adv.item()
    nets.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    nets.opt_g.step()
    nets.sched_g.step()
    return sr, logs


def _discriminator_step(
    cfg: TrainConfig, nets: TrainNets, sr: torch.Tensor, hr_t: torch.Tensor, device: torch.device
) -> float:
    """One discriminator update on the HR batch and this step's SR batch; returns its loss."""
    # Alternate updates (k = 1): D sees the generator output of this step.
    with _autocast(cfg, device):
        real_logits, fake_logits = nets.disc(hr_t), nets.disc(sr.detach())
    loss_d = discriminator_loss(real_logits.float(), fake_logits.float())
    nets.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    nets.opt_d.step()
    nets.sched_d.step()
    return loss_d.item()


def _log_step(prog: Progress, logs: dict[str, float], sched_g: MultiStepLR) -> None:
    """Print one progress line: the step's losses, the LR and the cumulative speed."""
    parts = " ".join(f"{k} {v:.5f}" for k, v in logs.items())
    tqdm.write(
        f"step {prog.step} {parts} lr {sched_g.get_last_lr()[0]:.2e} "
        f"{prog.step / max(prog.wall, 1e-9):.3f} steps/s (cumulative)",
        file=sys.stdout,
    )
    sys.stdout.flush()


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
