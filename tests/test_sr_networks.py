"""Networks: the paper's shapes and parameter counts, ICNR, tiled inference, losses."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sr_models.discriminator import Discriminator, DiscriminatorConfig
from sr_models.espcn import ESPCN, ESPCNConfig
from sr_models.inference import run_tiled, upscale_images
from sr_models.losses import VGG_LAYERS, VGGLoss, load_vgg19_features, tv_loss
from sr_models.srcnn import SRCNN
from sr_models.srresnet import SRResNet, SRResNetConfig, SubPixelTail


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_it_builds_the_paper_srresnet_with_about_1_55m_parameters():
    model = SRResNet()
    assert n_params(model) == pytest.approx(1.55e6, rel=0.005)
    assert len(model.body) == 16
    assert [type(m).__name__ for m in model.upsample] == ["Conv2d", "PixelShuffle", "PReLU"] * 2
    assert model.conv_first.kernel_size == (9, 9) and model.conv_last.kernel_size == (9, 9)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_it_upscales_by_2_4_8(scale):
    model = SRResNet(SRResNetConfig(scale=scale, num_feat=8, num_blocks=1)).eval()
    assert model(torch.rand(2, 3, 7, 5)).shape == (2, 3, 7 * scale, 5 * scale)


def test_it_refuses_an_unsupported_scale():
    with pytest.raises(ValueError, match="2, 4 or 8"):
        SRResNetConfig(scale=3)


def test_it_starts_subpixel_convs_as_nearest_neighbour_icnr():
    model = SRResNet(SRResNetConfig(num_feat=8, num_blocks=1))
    conv, shuffle = model.upsample[0], model.upsample[1]
    out = shuffle(conv(torch.rand(1, 8, 5, 5)) - conv.bias.view(1, -1, 1, 1))
    # Every 2x2 output block is constant: no checkerboard at initialisation.
    np.testing.assert_allclose(
        out[..., ::2, ::2].detach(), out[..., 1::2, 1::2].detach(), atol=1e-6
    )


def test_it_gives_discriminator_logits_for_96px_crops():
    disc = Discriminator()
    convs = [m for m in disc.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4
    out = disc(torch.rand(2, 3, 96, 96) * 2 - 1)
    assert out.shape == (2, 1)  # logits, no sigmoid
    with pytest.raises(ValueError, match="96x96"):
        disc(torch.rand(1, 3, 64, 64))
    assert Discriminator(DiscriminatorConfig(input_size=64))(torch.rand(1, 3, 64, 64)).shape == (
        1,
        1,
    )


def test_it_builds_the_baselines():
    srcnn = SRCNN()
    assert [c.kernel_size[0] for c in (srcnn.conv1, srcnn.conv2, srcnn.conv3)] == [9, 5, 5]
    assert srcnn(torch.rand(1, 3, 20, 20)).shape == (1, 3, 20, 20)
    assert ESPCN(ESPCNConfig(scale=4))(torch.rand(1, 3, 10, 12)).shape == (1, 3, 40, 48)


def test_it_tiles_like_the_untiled_run_within_one_grey_level():
    torch.manual_seed(0)
    model = SRResNet(SRResNetConfig(num_feat=16, num_blocks=4)).eval()
    with torch.no_grad():  # untrained BN would be identity; give it real statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2)
    lr = np.random.default_rng(0).integers(0, 256, (45, 38, 3), dtype=np.uint8)
    whole = upscale_images(model, [lr], 4, tile=None)[0].astype(int)
    tiled = upscale_images(model, [lr], 4, tile=16)[0].astype(int)
    assert whole.shape == (180, 152, 3)
    assert np.abs(whole - tiled).max() <= 1
    x = torch.rand(1, 3, 33, 20)
    np.testing.assert_allclose(
        run_tiled(model, x, 4, tile=None), run_tiled(model, x, 4, tile=8), atol=1e-4
    )


def test_it_computes_total_variation():
    flat = torch.zeros(1, 3, 8, 8)
    assert tv_loss(flat) == 0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    assert tv_loss(ramp).item() == pytest.approx(1.0)


def test_it_picks_vgg19_relu2_2_and_relu5_4():
    from torchvision.models.vgg import cfgs

    # torchvision's VGG19 (config "E") features: conv+ReLU per number, one module per "M".
    kinds = [k for v in cfgs["E"] for k in (["pool"] if v == "M" else ["conv", "relu"])]
    for layer, index in VGG_LAYERS.items():
        assert kinds[index] == "relu" and kinds[index + 1] == "pool", layer
    assert kinds[: VGG_LAYERS["vgg22"] + 1].count("conv") == 4  # conv1_1..conv2_2
    assert kinds[: VGG_LAYERS["vgg54"] + 1].count("conv") == 16  # ..conv5_4


def test_it_refuses_a_vgg_loss_without_weights(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="not found"):
        load_vgg19_features(tmp_path / "missing.pth")

    def offline(*args, weights=None, **kwargs):
        if weights is not None:
            raise OSError("no network")
        return torch.nn.Module()  # stands in for the randomly initialised VGG19

    monkeypatch.delenv("SRMOS_VGG19_WEIGHTS", raising=False)
    monkeypatch.setattr("torchvision.models.vgg19", offline)
    with pytest.raises(RuntimeError, match="SRMOS_VGG19_WEIGHTS"):
        VGGLoss("vgg54")


@pytest.mark.parametrize("model", [SRCNN(), ESPCN()], ids=["srcnn", "espcn"])
def test_it_tiles_the_baselines_like_the_untiled_run(model):
    model.eval()
    lr = np.random.default_rng(1).integers(0, 256, (30, 27, 3), dtype=np.uint8)
    whole = upscale_images(model, [lr], 4, tile=None)[0].astype(int)
    tiled = upscale_images(model, [lr], 4, tile=8)[0].astype(int)
    assert whole.shape == (120, 108, 3)
    assert np.abs(whole - tiled).max() <= 1


def _random_srresnet(scale, **config):
    """A small SRResNet with every weight and bias random (no ICNR symmetry, no zero biases), so
    a wrong channel or phase order in the inference graph changes the output."""
    torch.manual_seed(scale)
    model = SRResNet(SRResNetConfig(scale=scale, num_feat=8, num_blocks=2, **config))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, 0.2)
                m.bias.normal_(0, 0.2)
            elif isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(-0.5, 0.5)
    model.train()
    for _ in range(3):  # give BN non-trivial running statistics
        model(torch.rand(4, 3, 12, 12))
    return model.eval()


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_its_inference_graph_computes_the_same_function(scale):
    """fused(): BatchNorm folded, and the last shuffle + PReLU + 9x9 conv run as SubPixelTail."""
    model = _random_srresnet(scale).double()  # float64: a wrong term shows, rounding does not
    fused = model.fused()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert isinstance(fused.conv_last, SubPixelTail)
    assert not any(isinstance(m, torch.nn.PixelShuffle) for m in fused.upsample[-2:])
    x = torch.rand(2, 3, 10, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("slopes", [1, 6])
@pytest.mark.parametrize("r", [2, 3])
def test_the_subpixel_tail_equals_shuffle_prelu_conv(r, slopes):
    torch.manual_seed(r)
    prelu = torch.nn.PReLU(slopes)
    prelu.weight.data.uniform_(-0.5, 0.5)
    conv = torch.nn.Conv2d(6, 3, 9, padding=4)
    v = torch.randn(2, 6 * r * r, 7, 5, dtype=torch.float64)
    tail = SubPixelTail(prelu, conv, r).double()
    reference = conv.double()(prelu.double()(torch.nn.functional.pixel_shuffle(v, r)))
    with torch.no_grad():
        torch.testing.assert_close(tail(v), reference, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_the_inference_graph_tiles_like_the_untiled_run(scale):
    fused = _random_srresnet(scale).fused()
    lr = np.random.default_rng(scale).integers(0, 256, (29, 26, 3), dtype=np.uint8)
    whole = upscale_images(fused, [lr], scale, tile=None)[0].astype(int)
    tiled = upscale_images(fused, [lr], scale, tile=7)[0].astype(int)
    assert whole.shape == (29 * scale, 26 * scale, 3)
    assert np.abs(whole - tiled).max() <= 1


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("0", "0")])
def test_importing_sr_models_turns_on_huge_pages_unless_told_not_to(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if given is not None:
        env["THP_MEM_ALLOC_ENABLE"] = given
    code = "import os, sr_models; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == expected
