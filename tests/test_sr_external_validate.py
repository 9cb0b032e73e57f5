"""Validation of an external model: scale, odd sizes, NaN, constant output, memory, float16."""

import re

import numpy as np
import pytest
import torch
from spandrel.architectures.Compact import Compact

from sr_models.errors import CheckpointError
from sr_models.external import load_model
from sr_models.inference import ExternalSR
from sr_models.validate import peak_memory, validate, validate_or_raise
from tests.test_sr_external import tiny_swinir


def custom(tmp_path, name="PixelShuffleNet", scale=2):
    from tests.sr_custom_model import PixelShuffleNet

    torch.save(PixelShuffleNet(scale=scale).state_dict(), tmp_path / f"{name}.pth")
    return load_model(tmp_path / f"{name}.pth", "class",
                      class_path=f"tests.sr_custom_model:{name}", kwargs={"scale": scale})  # fmt: skip


def test_a_sound_model_passes_with_its_figures(tmp_path):
    torch.manual_seed(0)
    model = Compact(num_feat=8, num_conv=2, upscale=2)
    torch.save(model.state_dict(), tmp_path / "c.pth")
    loaded = load_model(tmp_path / "c.pth")
    result = validate(loaded, 2, tile=32, check_half=True, memory_limit_bytes=1 << 30)
    assert result.ok and result.problems == []
    assert (result.scale, result.architecture) == (2, "RealESRGAN Compact")
    assert result.parameters == sum(p.numel() for p in model.parameters())
    assert result.peak_memory_bytes > 4 * result.parameters
    assert result.half_ok is True
    assert "float16 PSNR" in result.half_note and "dB" in result.half_note
    assert 0 < result.seconds < 30


def test_it_sets_the_scale_a_probe_could_not_measure(tmp_path):
    loaded = custom(tmp_path, "EvenOnlyNet", scale=3)  # 32x32 works: the load measured x3
    assert loaded.scale == 3
    loaded.scale = None
    result = validate(loaded, 3, tile=None)
    assert result.scale == 3 and result.peak_memory_bytes is None


@pytest.mark.parametrize(
    ("name", "scale", "expected", "message"),
    [
        ("PixelShuffleNet", 2, 4, "model upscales x2, the campaign needs x4"),
        ("NaNNet", 2, 2, "emits NaN for a 32x32 input"),
        ("ConstantNet", 2, 2, r"output is constant \(0.250\) for a 32x32 input"),
        ("EvenOnlyNet", 2, 2, r"fails on a 17x23 input \(ValueError: even sizes only"),
    ],
)
def test_it_refuses_a_model_that_breaks_a_rule(tmp_path, name, scale, expected, message):
    result = validate(custom(tmp_path, name, scale), expected, tile=16)
    assert not result.ok
    assert any(re.search(message, p) for p in result.problems), result.problems


def test_it_refuses_a_model_over_the_memory_limit(tmp_path):
    loaded = custom(tmp_path, "GreedyNet", scale=2)
    result = validate(loaded, 2, tile=32, memory_limit_bytes=2 << 20)
    # 64 maps of 128x128 floats = 4 MiB, held while the mean is taken
    assert result.peak_memory_bytes >= 4 << 20
    assert result.problems == [
        f"needs {result.peak_memory_bytes / 2**20:.1f} MiB for one 64x64 tile, over the "
        "limit of 2.0 MiB; use a smaller model or tile"
    ]


class _Allocates(torch.nn.Module):
    """Holds an 8 MiB and then a 4 MiB buffer at once, frees both, returns the input."""

    def forward(self, x):
        a = torch.ones(2 << 20, device=x.device)
        b = torch.ones(1 << 20, device=x.device)
        return x * 1 + (a.sum() + b.sum()) * 0


def test_it_measures_the_peak_of_what_a_forward_holds():
    peak = peak_memory(ExternalSR(_Allocates(), {"input_range": "0,1", "channel_order": "rgb",
                                                 "output_range": "0,1"}), 64, "cpu")  # fmt: skip
    inputs = 3 * 64 * 64 * 4
    assert 12 << 20 <= peak <= (12 << 20) + 8 * inputs


def test_it_refuses_half_precision_that_overflows(tmp_path):
    result = validate(custom(tmp_path, "HalfOverflowNet"), 2, tile=None, check_half=True)
    assert result.ok and result.half_ok is False
    assert "limit 0.05" in result.half_note


def test_it_trusts_spandrels_word_that_an_architecture_breaks_in_half(tmp_path):
    torch.save(tiny_swinir().state_dict(), tmp_path / "s.pth")
    result = validate(load_model(tmp_path / "s.pth"), 2, tile=16, check_half=True)
    assert result.ok and result.half_ok is False
    assert result.half_note == "spandrel marks SwinIR as unsafe in float16"


def test_validate_or_raise_names_the_file_and_the_problems(tmp_path):
    loaded = custom(tmp_path, scale=2)
    with pytest.raises(CheckpointError, match=r"PixelShuffleNet.pth: model upscales x2, the"):
        validate_or_raise(loaded, 4, tile=None)
    assert validate_or_raise(loaded, 2, tile=None).ok
    assert np.isfinite(validate(loaded, 2, tile=None).seconds)
