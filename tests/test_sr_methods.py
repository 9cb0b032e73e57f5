"""The method registry: one upscale interface for interpolation and networks."""

import dataclasses

import numpy as np
import pytest
import torch

from sr_models.checkpoint import FORMAT, save_checkpoint
from sr_models.degrade import imresize
from sr_models.errors import CheckpointError, ImageError
from sr_models.methods import (
    BUILTIN_METHODS,
    CHECKPOINT_DIR,
    NETWORKS,
    get_method,
    method_from_checkpoint,
)
from sr_models.srresnet import SRResNet, SRResNetConfig


def lr_image(h=10, w=13, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def small_checkpoint(path, arch="srresnet", scale=4):
    model = SRResNet(SRResNetConfig(scale=scale, num_feat=8, num_blocks=2)).eval()
    save_checkpoint(
        path,
        {
            "format": FORMAT,
            "name": "tiny",
            "arch": arch,
            "model_config": dataclasses.asdict(model.config),
            "model": model.state_dict(),
        },
    )
    return path


def test_it_lists_the_builtin_names():
    assert BUILTIN_METHODS == (
        "nearest",
        "bicubic",
        "lanczos",
        "srcnn",
        "espcn",
        "srresnet-mse",
        "srgan-mse",
    )


def test_it_refuses_an_unknown_name_listing_the_valid_ones():
    with pytest.raises(ValueError, match="nearest, bicubic, lanczos, srcnn"):
        get_method("edsr")


@pytest.mark.parametrize("name", ["nearest", "bicubic", "lanczos"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_it_upscales_by_exactly_the_scale(name, scale):
    method = get_method(name, scale=scale)
    assert (method.name, method.kind, method.scale) == (name, "interpolation", scale)
    sr = method.upscale(lr_image())
    assert sr.shape == (10 * scale, 13 * scale, 3) and sr.dtype == np.uint8


def test_it_makes_bicubic_matlab_imresize():
    lr = lr_image()
    np.testing.assert_array_equal(get_method("bicubic").upscale(lr), imresize(lr, 4))
    np.testing.assert_array_equal(get_method("nearest").upscale(lr)[::4, ::4], lr)


def test_it_refuses_a_grey_array():
    with pytest.raises(ImageError, match="RGB uint8"):
        get_method("bicubic").upscale(np.zeros((4, 4), dtype=np.uint8))


def test_it_runs_a_network_checkpoint_and_batches_by_size(tmp_path):
    method = method_from_checkpoint(small_checkpoint(tmp_path / "tiny.pt"), device="cpu")
    assert method.kind == "network" and method.scale == 4
    images = [lr_image(8, 8, 0), lr_image(6, 9, 1), lr_image(8, 8, 2)]
    out = method.upscale_batch(images)
    assert [o.shape for o in out] == [(32, 32, 3), (24, 36, 3), (32, 32, 3)]
    np.testing.assert_array_equal(out[1], method.upscale(images[1]))
    assert method_from_checkpoint(tmp_path / "tiny.pt", device="cpu") is method  # cached


def test_it_names_a_missing_or_foreign_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        method_from_checkpoint(tmp_path / "nope.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="foreign.pt.*not an sr_models checkpoint"):
        method_from_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.pt"):
        method_from_checkpoint(tmp_path / "junk.pt")


@pytest.mark.parametrize("name", NETWORKS)
def test_it_ships_a_loadable_x4_checkpoint(name):
    path = CHECKPOINT_DIR / f"{name}_x4.pt"
    assert path.is_file(), f"{path} missing"
    assert path.stat().st_size < 10e6
    method = get_method(name, scale=4, device="cpu")
    assert method.kind == "network" and method.scale == 4
    assert method.upscale(lr_image(12, 10)).shape == (48, 40, 3)
    assert get_method(name, scale=4, device="cpu") is method  # loaded once per process
