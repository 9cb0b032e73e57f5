"""Training: the loss falls, checkpoints round-trip and resume exactly, export ships weights."""

import dataclasses

import numpy as np
import pytest
import torch

from sr_models.checkpoint import export_generator, load_checkpoint, save_checkpoint
from sr_models.io import write_png
from sr_models.methods import method_from_checkpoint
from sr_models.train import TrainConfig, train


@pytest.fixture
def image_dirs(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:80]
    for folder, count in (("train", 4), ("val", 1)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            f = rng.uniform(0.05, 0.3, size=3)
            img = 127 + 100 * np.sin(
                f[0] * xx[..., None] + f[1] * yy[..., None] + f[2] * i + np.arange(3)
            )
            write_png(tmp_path / folder / f"img{i}.png", img.astype(np.uint8))
    return tmp_path


def config(root, **overrides):
    fields = dict(
        name="tiny",
        arch="espcn",
        scale=4,
        generator={"n1": 16, "n2": 8},
        train_dirs=[str(root / "train")],
        val_dir=str(root / "val"),
        patch_size=32,
        batch_size=4,
        steps=30,
        lr=3e-3,
        log_every=5,
        val_every=30,
        save_every=10,
        out_dir=str(root / "run"),
        seed=3,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def test_it_lowers_the_loss_and_stores_everything(image_dirs):
    last = train(config(image_dirs))
    state = load_checkpoint(last)
    history = [loss for _, loss in state["loss_history"]]
    assert np.mean(history[-2:]) < 0.5 * history[0]
    assert state["step"] == 30 and state["arch"] == "espcn"
    assert state["train_config"] == dataclasses.asdict(config(image_dirs))
    assert {"optimizer", "scheduler", "git_rev", "wall_time_s", "model"} <= set(state)
    assert state["val"]["psnr"] > 10 and 0 < state["val"]["ssim"] <= 1
    assert (image_dirs / "run" / "best.pt").is_file()


def test_it_resumes_exactly_where_it_stopped(image_dirs):
    straight = load_checkpoint(train(config(image_dirs, steps=20, out_dir=str(image_dirs / "a"))))
    train(config(image_dirs, steps=10, out_dir=str(image_dirs / "b")))
    resumed = load_checkpoint(train(config(image_dirs, steps=20, out_dir=str(image_dirs / "b"))))
    assert resumed["step"] == 20
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value)


def test_it_exports_a_small_generator_checkpoint(image_dirs):
    last = train(config(image_dirs, steps=5))
    out = export_generator(last, image_dirs / "tiny_x4.pt", "tiny")
    state = load_checkpoint(out)
    assert "optimizer" not in state and state["trained"]["step"] == 5
    method = method_from_checkpoint(out, device="cpu")
    lr = np.zeros((6, 7, 3), dtype=np.uint8)
    assert method.upscale(lr).shape == (24, 28, 3)


def test_it_raises_when_a_checkpoint_cannot_be_saved(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        save_checkpoint(blocker / "last.pt", {"format": "x"})


def test_it_refuses_unknown_config_keys(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"stpes": 3}')
    with pytest.raises(ValueError, match="stpes"):
        TrainConfig.from_json(path)
    with pytest.raises(ValueError, match="content_loss"):
        TrainConfig(content_loss="l1")


def test_it_fine_tunes_a_gan_from_a_pretrained_generator(image_dirs):
    tiny = {"num_feat": 8, "num_blocks": 1}
    pre = train(
        config(
            image_dirs,
            arch="srresnet",
            generator=tiny,
            steps=3,
            val_dir=None,
            holdout=0,
            out_dir=str(image_dirs / "pre"),
        )
    )
    export_generator(pre, image_dirs / "pre.pt", "pre")
    last = train(
        config(
            image_dirs,
            arch="srresnet",
            generator=tiny,
            steps=3,
            adv_weight=1e-3,
            init_from=str(image_dirs / "pre.pt"),
            out_dir=str(image_dirs / "gan"),
        )
    )
    state = load_checkpoint(last)
    assert {"disc", "optimizer_d"} <= set(state) and state["step"] == 3


def test_it_trains_with_bf16_autocast(image_dirs):
    last = train(config(image_dirs, amp="bf16", steps=20))
    history = [loss for _, loss in load_checkpoint(last)["loss_history"]]
    assert np.isfinite(history).all() and history[-1] < history[0]
