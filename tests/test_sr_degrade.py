"""MATLAB-compatible imresize, named kernels, modcrop."""

import numpy as np
import pytest

from sr_models.degrade import KERNELS, degrade, imresize, modcrop
from sr_models.io import read_rgb
from tests.conftest import shared_data


def test_it_names_the_kernels():
    assert KERNELS == ("matlab-bicubic", "pil-bicubic")


def test_it_modcrops():
    img = np.zeros((321, 481, 3), dtype=np.uint8)
    assert modcrop(img, 4).shape == (320, 480, 3)
    assert modcrop(img[..., 0], 3).shape == (321, 480)


def test_it_refuses_a_size_not_divisible_by_the_scale():
    with pytest.raises(ValueError, match="modcrop"):
        degrade(np.zeros((10, 13, 3), dtype=np.uint8), 4)


def test_it_refuses_an_unknown_kernel():
    with pytest.raises(ValueError, match="matlab-bicubic"):
        degrade(np.zeros((8, 8, 3), dtype=np.uint8), 4, kernel="gaussian")


@pytest.mark.parametrize("kernel", KERNELS)
def test_it_degrades_to_the_exact_size(kernel):
    hr = np.random.default_rng(0).integers(0, 256, (48, 36, 3), dtype=np.uint8)
    lr = degrade(hr, 4, kernel)
    assert lr.shape == (12, 9, 3) and lr.dtype == np.uint8


def test_it_keeps_constant_images_constant():
    img = np.full((17, 23, 3), 77, dtype=np.uint8)
    assert (imresize(img, 4) == 77).all()
    assert (imresize(img, 0.25) == 77).all()
    assert imresize(img, 4).shape == (68, 92, 3)
    assert imresize(img, 0.25).shape == (5, 6, 3)  # MATLAB: ceil(scale * size)


def test_it_mirrors_the_border_and_normalises_weights_like_matlab():
    # Halving a 1x6 row: output x maps to input u = 2x - 0.5 (1-based); the widened kernel
    # (width 8) reaches past both ends, where MATLAB mirrors the indices, so a symmetric input
    # gives a symmetric output and the weights of each output sum to one.
    x = np.array([[0, 0, 255, 255, 0, 0]], dtype=np.float64)
    out = imresize(x, output_shape=(1, 3))
    assert out.shape == (1, 3)
    assert out[0, 0] == pytest.approx(out[0, 2])
    assert out[0, 1] > 200 and out[0, 0] < 40
    assert imresize(np.ones((1, 6)), output_shape=(1, 3)) == pytest.approx(np.ones((1, 3)))


def test_it_upscales_bicubic_exactly_at_interpolation_points():
    # Upscaling x2 with a = -0.5 cubic: without antialiasing, values are a fixed
    # convex-ish mix of the neighbours; a linear ramp stays linear away from the borders.
    ramp = np.tile(np.arange(0, 64, 4, dtype=np.float64), (4, 1))
    up = imresize(ramp, 2)
    inner = up[:, 4:-4]
    np.testing.assert_allclose(np.diff(inner, axis=1), 2.0, atol=1e-9)


def test_it_matches_the_release_lr_with_pil_bicubic():
    # The SRGAN release's LR images are Pillow bicubic of the HR within 1 level (SOURCES.md),
    # and MATLAB's imresize differs from them by much more.
    root = shared_data() / "Set5"
    hr = read_rgb(root / "HR" / "baby_HR.png")
    release = read_rgb(root / "LRx4" / "baby_LR.png").astype(int)
    assert np.abs(degrade(hr, 4, "pil-bicubic").astype(int) - release).max() <= 1
    assert np.abs(degrade(hr, 4, "matlab-bicubic").astype(int) - release).max() > 3


def test_it_rounds_each_pass_on_uint8_like_matlab():
    img = np.random.default_rng(2).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    out_u8 = imresize(img, 0.5)
    out_f = imresize(img.astype(np.float64), 0.5)
    assert out_u8.dtype == np.uint8 and out_f.dtype == np.float64
    assert np.abs(out_u8.astype(float) - out_f).max() <= 1.0
