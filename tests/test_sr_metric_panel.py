"""The metric panel: piq checked against ports of the authors' MATLAB, properties, weight files.

The ports below follow the authors' released MATLAB line by line (Wang's `msssim.m` with
`ssim_index_new.m`, LIVE's `vifp_mscale.m`, Xue's `GMSD.m`); they share no code with piq.
"""

import importlib

import numpy as np
import piq
import pytest
import torch
from scipy import signal
from skimage import data
from torchvision.models import vgg16
from torchvision.models.vgg import cfgs, make_layers

from sr_models import metric_panel
from sr_models.degrade import degrade, imresize
from sr_models.metric_panel import (
    DEFAULT_PANEL,
    METRICS,
    WEIGHT_FILES,
    MetricFailure,
    measure_pair,
)
from sr_models.metrics import rgb2y

BRISQUE_MODULE = importlib.import_module("piq.brisque")  # piq.brisque is also its function
FULL_REFERENCE = ["ms_ssim", "vif", "fsim", "gmsd", "haarpsi"]
BEST = {"ms_ssim": 1, "vif": 1, "fsim": 1, "gmsd": 0, "haarpsi": 1, "lpips": 0, "dists": 0}


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a metric tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(BRISQUE_MODULE, "load_url", refuse)


def pair(size=(200, 200)):
    """A crop of scikit-image's astronaut and its MATLAB-bicubic x4 reconstruction."""
    h, w = size
    big = data.astronaut()[40 : 40 + -(-h // 4) * 4, 150 : 150 + -(-w // 4) * 4]
    return big[:h, :w], imresize(degrade(big, 4, "matlab-bicubic"), 4)[:h, :w]


def noisy(img, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(np.round(img + noise), 0, 255).astype(np.uint8)


# --- Ports of the authors' MATLAB -------------------------------------------------------------


def fspecial_gaussian(n, sigma):
    r = np.arange(n) - (n - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def filter2_valid(win, x):
    return signal.correlate(x, win, mode="valid")


def msssim_m(a, b):
    """msssim.m: 'valid' SSIM per scale, imfilter(ones(2)/4, 'symmetric') then (1:2:end)."""
    weight = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    win, c1, c2 = fspecial_gaussian(11, 1.5), (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mcs = []
    for _ in range(5):
        mu1, mu2 = filter2_valid(win, a), filter2_valid(win, b)
        s1 = filter2_valid(win, a * a) - mu1**2
        s2 = filter2_valid(win, b * b) - mu2**2
        s12 = filter2_valid(win, a * b) - mu1 * mu2
        cs = (2 * s12 + c2) / (s1 + s2 + c2)
        mcs.append(cs.mean())
        last_ssim = ((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs).mean()
        a, b = (np.pad(x, ((0, 1), (0, 1)), mode="symmetric") for x in (a, b))
        a, b = ((x[:-1, :-1] + x[1:, :-1] + x[:-1, 1:] + x[1:, 1:])[::2, ::2] / 4 for x in (a, b))
    return float(np.prod(np.array(mcs[:4]) ** weight[:4]) * last_ssim ** weight[4])


def vifp_mscale_m(ref, dist, sigma_nsq=2.0):
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = fspecial_gaussian(n, n / 5)
        if scale > 1:
            ref, dist = filter2_valid(win, ref)[::2, ::2], filter2_valid(win, dist)[::2, ::2]
        mu1, mu2 = filter2_valid(win, ref), filter2_valid(win, dist)
        s1 = np.maximum(filter2_valid(win, ref * ref) - mu1**2, 0)
        s2 = np.maximum(filter2_valid(win, dist * dist) - mu2**2, 0)
        s12 = filter2_valid(win, ref * dist) - mu1 * mu2
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        m = s1 < 1e-10
        g[m], sv[m], s1[m] = 0, s2[m], 0
        m = s2 < 1e-10
        g[m], sv[m] = 0, 0
        m = g < 0
        sv[m], g[m] = s2[m], 0
        sv[sv <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g**2 * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1 + s1 / sigma_nsq))
    return num / den


def gmsd_m(y1, y2, t=170.0):
    """GMSD.m: conv2 'same' with ones(2)/4, (1:2:end), Prewitt / 3, std2 of the GMS map."""

    def down(y):
        p = np.pad(y, ((0, 1), (0, 1)))
        return (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:])[::2, ::2] / 4

    dx = np.array([[1, 0, -1]] * 3) / 3.0

    def grad(y):
        return np.hypot(signal.convolve2d(y, dx, "same"), signal.convolve2d(y, dx.T, "same"))

    g1, g2 = grad(down(y1)), grad(down(y2))
    return float(np.std((2 * g1 * g2 + t) / (g1**2 + g2**2 + t), ddof=1))


def cropped_y(img, c=4):
    return rgb2y(img)[c:-c, c:-c]


@pytest.mark.parametrize("size", [(184, 184), (192, 232)])
def test_it_matches_msssim_m_where_sizes_halve_evenly(size):
    # 176 = 11 x 16 after the 4-pixel crop: every scale has an even side, where piq and msssim.m
    # pool the same 2x2 blocks.
    hr, sr = pair(size)
    got = measure_pair(hr, sr, ["ms_ssim"], crop_border=4)["ms_ssim"]
    assert got == pytest.approx(msssim_m(cropped_y(hr), cropped_y(sr)), abs=2e-5)


def test_it_stays_within_2e_3_of_msssim_m_on_odd_sizes():
    # On an odd side piq pads a row at the top (msssim.m: at the bottom) before pooling 2x2.
    hr, sr = pair((203, 211))
    got = measure_pair(hr, sr, ["ms_ssim"], crop_border=4)["ms_ssim"]
    assert got == pytest.approx(msssim_m(cropped_y(hr), cropped_y(sr)), abs=2e-3)


@pytest.mark.parametrize("size", [(200, 200), (121, 163)])
def test_it_matches_vifp_mscale_m(size):
    hr, sr = pair(size)
    got = measure_pair(hr, sr, ["vif"], crop_border=4)["vif"]
    # The reference is the first argument: swapping them gives a different number.
    assert got == pytest.approx(vifp_mscale_m(cropped_y(hr), cropped_y(sr)), rel=1e-5)
    assert got != pytest.approx(vifp_mscale_m(cropped_y(sr), cropped_y(hr)), rel=1e-2)


@pytest.mark.parametrize("size", [(200, 200), (121, 163)])
def test_it_matches_gmsd_m(size):
    hr, sr = pair(size)
    grey = [i[4:-4, 4:-4].astype(float) @ [0.299, 0.587, 0.114] for i in (hr, sr)]
    got = measure_pair(hr, sr, ["gmsd"], crop_border=4)["gmsd"]
    # std2 divides by N - 1, piq by N: 1/(2N) = 1.1e-4 of the value on the smaller image.
    assert got == pytest.approx(gmsd_m(*grey), rel=2e-4)


def test_its_shortcuts_give_piqs_own_gmsd_and_haarpsi():
    # GMSD gets luma and HaarPSI pre-pooled RGB, computed once in numpy: same values as piq on
    # the RGB image, odd sides included.
    hr, sr = pair((123, 170))
    x, y = (torch.from_numpy(i[4:-4, 4:-4]).permute(2, 0, 1)[None].double() for i in (sr, hr))
    got = measure_pair(hr, sr, ["gmsd", "haarpsi"], crop_border=4)
    assert got["gmsd"] == pytest.approx(piq.gmsd(x, y, data_range=255.0).item(), rel=1e-5)
    assert got["haarpsi"] == pytest.approx(piq.haarpsi(x, y, data_range=255.0).item(), rel=1e-5)


def test_it_agrees_with_piqa_an_independent_implementation():
    # piqa (F. Rozet) shares no code with piq. Not in requirements-dev.txt (yet): skipped without.
    piqa = pytest.importorskip("piqa")
    hr, sr = pair((200, 240))
    x, y = (torch.from_numpy(i[4:-4, 4:-4]).permute(2, 0, 1)[None].float() for i in (sr, hr))
    got = measure_pair(hr, sr, ["fsim", "haarpsi", "gmsd"], crop_border=4)
    assert got["fsim"] == pytest.approx(piqa.FSIM(value_range=255.0)(x, y).item(), abs=1e-4)
    assert got["haarpsi"] == pytest.approx(piqa.HaarPSI(value_range=255.0)(x, y).item(), abs=1e-4)
    assert got["gmsd"] == pytest.approx(piqa.GMSD(value_range=255.0)(x, y).item(), abs=1e-4)


# --- Properties -------------------------------------------------------------------------------


def test_it_gives_the_best_value_for_identical_images(weight_files):
    hr, _ = pair()
    got = measure_pair(hr, hr, BEST, crop_border=4, weights=weight_files)
    assert got == {name: pytest.approx(best, abs=1e-5) for name, best in BEST.items()}


def test_it_gets_worse_as_noise_grows(weight_files):
    hr, _ = pair()
    runs = [measure_pair(hr, noisy(hr, s), BEST, 4, weight_files) for s in (2, 8, 24)]
    for name, best in BEST.items():
        values = [run[name] for run in runs]
        sign = 1 if best == 1 else -1
        assert all(sign * a > sign * b for a, b in zip(values, values[1:], strict=False)), name


def test_it_measures_after_cropping_the_border():
    hr, sr = pair((210, 220))
    whole = measure_pair(hr, sr, FULL_REFERENCE, crop_border=5)
    inner = measure_pair(hr[5:-5, 5:-5], sr[5:-5, 5:-5], FULL_REFERENCE, crop_border=0)
    assert whole == inner
    assert measure_pair(hr, sr, ["gmsd"], crop_border=0) != measure_pair(hr, sr, ["gmsd"], 5)


def test_a_small_image_loses_ms_ssim_only():
    hr, sr = pair((120, 168))
    got = measure_pair(hr, sr, FULL_REFERENCE, crop_border=4)
    assert isinstance(got["ms_ssim"], MetricFailure)
    assert "161x161" in got["ms_ssim"].reason and "112x160" in got["ms_ssim"].reason
    assert all(isinstance(got[n], float) for n in FULL_REFERENCE if n != "ms_ssim")


def test_a_failing_metric_says_why_in_one_line():
    hr, sr = pair((30, 30))
    got = measure_pair(hr, sr, FULL_REFERENCE, crop_border=0)
    assert isinstance(got["vif"], MetricFailure) and "41x41" in got["vif"].reason
    assert all("\n" not in v.reason for v in got.values() if isinstance(v, MetricFailure))
    assert isinstance(got["gmsd"], float)


def test_it_refuses_bad_input_loudly():
    hr, sr = pair((64, 64))
    with pytest.raises(ValueError, match="unknown metric"):
        measure_pair(hr, sr, ["psnr"], crop_border=4)
    with pytest.raises(ValueError, match="differ in shape"):
        measure_pair(hr, sr[:-4], ["gmsd"], crop_border=4)
    with pytest.raises(ValueError, match="uint8"):
        measure_pair(hr.astype(float), sr, ["gmsd"], crop_border=4)
    with pytest.raises(ValueError, match="nothing left"):
        measure_pair(hr, sr, ["gmsd"], crop_border=32)


def test_it_leaves_torchs_thread_count_to_the_caller():
    # The setting is shared by a worker's threads: changing it per call would race.
    hr, sr = pair((64, 64))
    before = torch.get_num_threads()
    measure_pair(hr, sr, ["gmsd"], crop_border=4)
    assert torch.get_num_threads() == before


def test_the_analysis_orients_and_names_the_metrics_alike():
    from study.analysis.panel_base import LABELS, LOWER_IS_BETTER

    assert {n for n, s in METRICS.items() if s.direction == "lower"} <= LOWER_IS_BETTER
    assert {n: LABELS[n] for n in METRICS} == {n: s.label for n, s in METRICS.items()}


def test_its_registry_states_every_convention():
    assert set(DEFAULT_PANEL) <= set(METRICS)
    assert {n for n, s in METRICS.items() if s.direction == "lower"} == {
        "gmsd",
        "lpips",
        "dists",
        "brisque",
    }
    assert {n for n, s in METRICS.items() if s.needs_weights} == {"lpips", "dists", "brisque"}
    assert {k for s in METRICS.values() for k in s.weight_files} == set(WEIGHT_FILES)
    assert all(
        s.reference in ("full", "no") and s.channel and s.description for s in METRICS.values()
    )


# --- Weight files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """Random weights of the right shapes, saved as the published files are laid out."""
    root = tmp_path_factory.mktemp("weights")
    gen = torch.Generator().manual_seed(0)
    state = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    torch.save(state, root / "vgg16.pth")
    torch.save(
        [torch.rand(1, c, 1, 1, generator=gen) for c in (64, 128, 256, 512, 512)], root / "l.pt"
    )
    ab = {k: torch.rand(1, 1475, 1, 1, generator=gen) for k in ("alpha", "beta")}
    torch.save(ab, root / "d.pt")
    svr = (torch.randn(40, generator=gen), torch.rand(40, 36, generator=gen) * 2 - 1)
    torch.save(svr, root / "b.pt")
    return {
        "vgg16": root / "vgg16.pth",
        "lpips": root / "l.pt",
        "dists": root / "d.pt",
        "brisque": root / "b.pt",
    }


def test_it_refuses_a_learned_metric_without_weights_naming_the_files():
    hr, sr = pair((64, 64))
    got = measure_pair(hr, sr, ["lpips", "dists", "brisque", "gmsd"], crop_border=4)
    assert isinstance(got["gmsd"], float)
    for name in ("lpips", "dists", "brisque"):
        reason = got[name].reason
        assert "SRMOS_METRIC_WEIGHTS" in reason and "\n" not in reason
        for key in METRICS[name].weight_files:
            assert WEIGHT_FILES[key][0] in reason


def test_it_refuses_missing_corrupt_and_misshapen_weight_files(weight_files, tmp_path):
    hr, sr = pair((64, 64))
    (tmp_path / "corrupt.pt").write_bytes(b"not a torch file")
    torch.save([torch.zeros(1, 64, 1, 1)] * 4, tmp_path / "four.pt")
    torch.save({"alpha": np.zeros(1475)}, tmp_path / "numpy.pt")  # not weights-only loadable
    cases = {
        "lpips": ({"lpips": tmp_path / "absent.pt"}, "not found"),
        "dists": ({"dists": tmp_path / "corrupt.pt"}, "torch.load can read"),
        "brisque": ({"brisque": tmp_path / "numpy.pt"}, "torch.load can read"),
    }
    for name, (paths, words) in cases.items():
        got = measure_pair(hr, sr, [name], 4, {**weight_files, **paths})[name]
        assert isinstance(got, MetricFailure) and words in got.reason, got
    got = measure_pair(hr, sr, ["lpips"], 4, {**weight_files, "lpips": tmp_path / "four.pt"})
    assert "5 tensors" in got["lpips"].reason


def test_its_lpips_is_the_papers_formula_on_vgg16_relus(weight_files):
    hr, sr = pair((64, 80))
    got = measure_pair(hr, sr, ["lpips"], crop_border=4, weights=weight_files)["lpips"]
    net = vgg16(weights=None).eval()
    net.load_state_dict(torch.load(weight_files["vgg16"]), strict=False)
    lin = torch.load(weight_files["lpips"])
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    feats = []
    for img in (hr, sr):
        x = (torch.from_numpy(img[4:-4, 4:-4] / 255.0).float() - mean) / std
        x, out = x.permute(2, 0, 1)[None], []
        for i, layer in enumerate(net.features[:30]):
            x = layer(x)
            if i in (3, 8, 15, 22, 29):  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        feats.append(out)
    with torch.no_grad():
        want = sum((w * (a - b) ** 2).sum(1).mean() for w, a, b in zip(lin, *feats, strict=True))
    assert got == pytest.approx(want.item(), rel=1e-4)


def test_its_lpips_and_dists_are_piqs_classes_with_the_given_weights(weight_files, monkeypatch):
    # piq's own classes, their downloads answered with the same weights: the same numbers.
    hr, sr = pair((96, 120))
    state = {k[len("features.") :]: v for k, v in torch.load(weight_files["vgg16"]).items()}

    def vgg(**kwargs):
        net = vgg16(weights=None)
        net.features.load_state_dict(state)
        return net

    ab = torch.load(weight_files["dists"])
    total = ab["alpha"].sum() + ab["beta"].sum()
    files = {
        "lpips": torch.load(weight_files["lpips"]),
        "dists": {k: v / total for k, v in ab.items()},
    }
    monkeypatch.setattr(piq.perceptual, "vgg16", vgg)
    x, y = (
        torch.from_numpy(i[4:-4, 4:-4] / 255.0).permute(2, 0, 1)[None].float() for i in (sr, hr)
    )
    got = measure_pair(hr, sr, ["lpips", "dists"], crop_border=4, weights=weight_files)
    for name, cls in (("lpips", piq.LPIPS), ("dists", piq.DISTS)):
        monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, f=files[name], **k: f)
        with torch.no_grad():
            assert got[name] == pytest.approx(cls()(x, y).item(), rel=1e-5, abs=1e-7), name


def test_it_reads_the_authors_lpips_and_dists_layouts_too(weight_files, tmp_path):
    hr, sr = pair((64, 64))
    lin = torch.load(weight_files["lpips"])
    torch.save({f"lin{i}.model.1.weight": w for i, w in enumerate(lin)}, tmp_path / "vgg.pth")
    ab = {k: v * 7 for k, v in torch.load(weight_files["dists"]).items()}  # not normalised
    torch.save(ab, tmp_path / "weights.pt")
    theirs = {**weight_files, "lpips": tmp_path / "vgg.pth", "dists": tmp_path / "weights.pt"}
    assert measure_pair(hr, sr, ["lpips", "dists"], 4, theirs) == pytest.approx(
        measure_pair(hr, sr, ["lpips", "dists"], 4, weight_files), rel=1e-5
    )


def test_its_brisque_is_piqs_with_the_given_support_vectors(weight_files, monkeypatch):
    hr, sr = pair((96, 96))
    got = measure_pair(hr, sr, ["brisque"], crop_border=4, weights=weight_files)["brisque"]
    coef, sv = torch.load(weight_files["brisque"])
    monkeypatch.setattr(BRISQUE_MODULE, "load_url", lambda *a, **k: (coef.clone(), sv.clone()))
    x = torch.from_numpy(sr[4:-4, 4:-4]).permute(2, 0, 1)[None].float()
    assert got == pytest.approx(piq.brisque(x, data_range=255.0).item(), rel=1e-5)
    # No reference: the HR image does not matter.
    assert measure_pair(sr, sr, ["brisque"], 4, weight_files)["brisque"] == got


def test_it_caches_each_network_once_per_file(weight_files):
    metric_panel._lpips_net.cache_clear()
    hr, sr = pair((64, 64))
    for _ in range(2):
        measure_pair(hr, sr, ["lpips"], crop_border=4, weights=weight_files)
    assert metric_panel._lpips_net.cache_info().misses == 1
