"""PSNR/SSIM conventions, proven on the SRGAN authors' released outputs (../shared/data)."""

import numpy as np
import pytest

from sr_models.degrade import degrade, imresize
from sr_models.io import read_rgb
from sr_models.metrics import psnr, rgb2y, ssim
from tests.conftest import shared_data


def mean_psnr_of_release(dataset: str, method: str) -> float:
    root = shared_data() / dataset
    values = []
    for hr_path in sorted((root / "HR").glob("*_HR.png")):
        name = hr_path.name[: -len("_HR.png")]
        sr = read_rgb(root / "results" / method / f"{name}_{method}.png")
        values.append(psnr(read_rgb(hr_path), sr, crop_border=4, y_channel=True))
    assert values, f"no images in {root / 'HR'}"
    return float(np.mean(values))


@pytest.mark.parametrize(
    "dataset, method, expected",
    [
        ("Set5", "SRGAN-VGG54", 29.41),
        ("Set5", "SRResNet-MSE", 32.06),
        ("Set14", "SRGAN-VGG54", 26.11),
        ("Set14", "SRResNet-MSE", 28.59),
    ],
)
def test_it_reproduces_the_released_outputs_psnr(dataset, method, expected):
    assert mean_psnr_of_release(dataset, method) == pytest.approx(expected, abs=0.006)


def test_it_reproduces_the_field_bicubic_x4_on_set5():
    root = shared_data() / "Set5" / "HR"
    ps, ss = [], []
    for path in sorted(root.glob("*_HR.png")):
        hr = read_rgb(path)
        sr = imresize(degrade(hr, 4, "matlab-bicubic"), 4)
        ps.append(psnr(hr, sr, crop_border=4))
        ss.append(ssim(hr, sr, crop_border=4))
    assert np.mean(ps) == pytest.approx(28.42, abs=0.006)
    # The field's 0.8104 comes from MATLAB; scikit-image's SSIM on the same Y gives 0.8101.
    assert np.mean(ss) == pytest.approx(0.8104, abs=0.0006)


def test_it_gives_infinity_and_one_for_identical_images():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(img, img) == float("inf")
    assert psnr(img, img, crop_border=4, y_channel=False) == float("inf")
    assert ssim(img, img) == pytest.approx(1.0)


def test_it_rounds_y_like_matlab_on_uint8():
    img = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [10, 200, 30]]], dtype=np.uint8)
    y = rgb2y(img)
    # MATLAB rgb2ycbcr: 235, 16, round(16 + 65.481) = 81, round(16 + (65.481*10 + 128.553*200
    # + 24.966*30) / 255) = round(122.33) = 122.
    assert y.tolist() == [[235.0, 16.0, 81.0, 122.0]]
    assert rgb2y(img.astype(np.float64))[0, 2] == pytest.approx(16 + 65.481)


def test_it_knows_a_psnr_by_hand():
    a = np.full((20, 20, 3), 100, dtype=np.uint8)
    b = a + 1
    assert psnr(a, b, y_channel=False) == pytest.approx(10 * np.log10(255.0**2), abs=1e-9)


def test_it_accepts_grey_images():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    assert np.isfinite(psnr(a, b, crop_border=4))
    assert 0 < ssim(a, b, crop_border=4) < 1
    # A grey image given as HxW is taken as luma already: y_channel makes no difference.
    assert psnr(a, b, y_channel=True) == psnr(a, b, y_channel=False)
    assert psnr(a[..., None], b[..., None]) == psnr(a, b)


def test_it_measures_a_grey_image_stored_as_rgb():
    root = shared_data() / "Set14"
    hr = read_rgb(root / "HR" / "bridge_HR.png")
    assert (hr[..., 0] == hr[..., 1]).all() and (hr[..., 1] == hr[..., 2]).all()
    sr = read_rgb(root / "results" / "SRResNet-MSE" / "bridge_SRResNet-MSE.png")
    assert 20 < psnr(hr, sr, crop_border=4) < 40


def test_it_refuses_mismatched_shapes_and_overcropping():
    a = np.zeros((20, 20, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, np.zeros((20, 21, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="cropping"):
        psnr(a, a, crop_border=10)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a, a, crop_border=5)
