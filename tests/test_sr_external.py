"""Bring your own model: loading by every route, the RGB [0, 1] wrapper, inference, the cache.

Validation is in test_sr_validate.py. Every network here is tiny and random; nothing downloads.
"""

import dataclasses
import hashlib
import threading
import zipfile

import numpy as np
import pytest
import torch
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.SPAN import SPAN
from spandrel.architectures.SwinIR import SwinIR

from sr_models.checkpoint import FORMAT, save_checkpoint
from sr_models.errors import CheckpointError
from sr_models.external import LoadedModel, load_model, upscale_with
from sr_models.inference import upscale_images
from sr_models.model_cache import ModelCache, budget_from_env, model_bytes
from sr_models.srresnet import SRResNet, SRResNetConfig
from tests.sr_custom_model import PixelShuffleNet

CUSTOM = "tests.sr_custom_model:PixelShuffleNet"
BGR_SIGNED = {"input_range": "-1,1", "channel_order": "bgr", "output_range": "[-1, 1]"}


def lr_image(h=9, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def save(model, path):
    torch.save(model.state_dict(), path)
    return path


def tiny_swinir():
    return SwinIR(
        embed_dim=12,
        depths=[1],
        num_heads=[2],
        window_size=4,
        img_size=16,
        upscale=2,
        upsampler="pixelshuffledirect",
    )


def tiny_span():
    return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=3)


SPANDREL_CASES = {
    # builder, spandrel's name, scale, min_size, supports_half
    "esrgan": (lambda: ESRGAN(num_filters=8, num_blocks=1, scale=4), "ESRGAN", 4, 2, True),
    "compact": (lambda: Compact(num_feat=8, num_conv=2), "RealESRGAN Compact", 4, 1, True),
    "swinir": (tiny_swinir, "SwinIR", 2, 16, False),
    "span": (tiny_span, "SPAN", 3, 1, True),
}


@pytest.mark.parametrize("case", SPANDREL_CASES)
def test_it_describes_a_spandrel_state_dict(tmp_path, case):
    build, name, scale, min_size, half = SPANDREL_CASES[case]
    torch.manual_seed(0)
    model = build()
    path = save(model, tmp_path / f"{case}.pth")
    loaded = load_model(path)
    assert (loaded.route, loaded.architecture, loaded.scale) == ("spandrel", name, scale)
    assert loaded.parameters == n_params(model)
    assert (loaded.size_multiple, loaded.min_size, loaded.supports_half) == (1, min_size, half)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # 9x7 is below SwinIR's 16-pixel minimum: padded, run, cropped back
    sr = upscale_with(loaded, [lr_image(), lr_image(seed=1)], scale)
    assert [im.shape for im in sr] == [(9 * scale, 7 * scale, 3)] * 2


def test_it_reads_safetensors_and_wrapped_state_dicts(tmp_path):
    from safetensors.torch import save_file

    model = Compact(num_feat=8, num_conv=2, upscale=4)
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    torch.save({"params_ema": model.state_dict(), "iter": 5}, tmp_path / "ema.pth")
    for name in ("m.safetensors", "ema.pth"):
        loaded = load_model(tmp_path / name)
        assert (loaded.route, loaded.scale, loaded.parameters) == ("spandrel", 4, n_params(model))


def test_it_runs_a_spandrel_model_as_the_network_itself(tmp_path):
    torch.manual_seed(1)
    model = Compact(num_feat=8, num_conv=2, upscale=2).eval()
    loaded = load_model(save(model, tmp_path / "c.pth"))
    lr = lr_image(12, 10)
    with torch.no_grad():
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
        expected = (model(x).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    got = upscale_with(loaded, [lr], 2)[0].astype(int)
    assert np.abs(got - expected).max() <= 1


def test_it_loads_torchscript(tmp_path):
    net = PixelShuffleNet(scale=2).eval()
    torch.jit.script(net).save(tmp_path / "net.pt")
    loaded = load_model(tmp_path / "net.pt")
    assert (loaded.route, loaded.architecture) == ("torchscript", "PixelShuffleNet")
    assert loaded.scale == 2
    assert loaded.parameters == n_params(net)
    assert upscale_with(loaded, [lr_image(17, 23)], 2)[0].shape == (34, 46, 3)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Three exports of one net: dynamic (batch, height, width), dynamic (height, width) with
    a batch of 1, and static 32x32."""
    from torch.export import Dim, export, save

    folder = tmp_path_factory.mktemp("exports")
    net = PixelShuffleNet(scale=2).eval()
    hw = {2: Dim("h"), 3: Dim("w")}
    specs = {
        "dynamic": (torch.rand(2, 3, 32, 32), {"x": {0: Dim("n"), **hw}}),
        "batch1": (torch.rand(1, 3, 32, 32), {"x": hw}),
        "static": (torch.rand(1, 3, 32, 32), None),
    }
    for name, (example, dynamic) in specs.items():
        save(export(net, (example,), dynamic_shapes=dynamic), folder / f"{name}.pt2")
    return folder, net


@pytest.mark.parametrize("name", ["dynamic", "batch1"])
def test_it_loads_a_torch_export_with_dynamic_sizes(exports, name):
    folder, net = exports
    loaded = load_model(folder / f"{name}.pt2")
    assert (loaded.route, loaded.scale, loaded.parameters) == ("export", 2, n_params(net))
    assert loaded.module.per_image == (name == "batch1")
    sr = upscale_with(loaded, [lr_image(17, 23), lr_image(17, 23, seed=2)], 2)
    assert [im.shape for im in sr] == [(34, 46, 3)] * 2


def test_it_refuses_a_torch_export_of_one_size(exports):
    folder, _ = exports
    with pytest.raises(CheckpointError, match="exported for 32x32 inputs only; re-export"):
        load_model(folder / "static.pt2")


def test_it_applies_a_bgr_signed_convention(tmp_path):
    torch.manual_seed(2)
    net = PixelShuffleNet(scale=2)
    with torch.no_grad():
        net.conv.weight.normal_(0, 0.5)
        net.conv.bias.normal_(0, 0.3)
    path = save(net, tmp_path / "w.pth")
    loaded = load_model(path, "class", class_path=CUSTOM, kwargs='{"scale": 2}',
                        convention=BGR_SIGNED, scale=2)  # fmt: skip
    assert (loaded.route, loaded.architecture, loaded.scale) == ("class", "PixelShuffleNet", 2)
    assert loaded.convention == {**BGR_SIGNED, "output_range": "-1,1"}
    lr = lr_image(6, 5)
    # By hand: RGB [0, 1] -> BGR [-1, 1] -> per-pixel affine map -> pixel shuffle -> back.
    w = net.conv.weight.detach().numpy()[:, :, 0, 0]
    bgr = (lr / 255.0 * 2 - 1)[..., ::-1]
    z = bgr @ w.T + net.conv.bias.detach().numpy()  # (h, w, 3 * 2 * 2), channel = c*4 + i*2 + j
    y = z.reshape(6, 5, 3, 2, 2).transpose(0, 3, 1, 4, 2).reshape(12, 10, 3)
    expected = np.round(((y[..., ::-1] + 1) / 2).clip(0, 1) * 255)
    got = upscale_with(loaded, [lr], 2)[0].astype(int)
    assert np.abs(got - expected).max() <= 1
    plain = load_model(path, "class", class_path=CUSTOM, kwargs={"scale": 2})
    assert np.abs(upscale_with(plain, [lr], 2)[0].astype(int) - expected).max() > 20


def srmos_checkpoint(path, scale=4):
    model = SRResNet(SRResNetConfig(scale=scale, num_feat=8, num_blocks=2)).eval()
    config = dataclasses.asdict(model.config)
    save_checkpoint(path, {"format": FORMAT, "name": "tiny", "arch": "srresnet",
                           "model_config": config, "model": model.state_dict()})  # fmt: skip
    return model


def test_it_loads_an_srmos_checkpoint_like_the_builtin_inference(tmp_path):
    model = srmos_checkpoint(tmp_path / "tiny_x4.pt")
    loaded = load_model(tmp_path / "tiny_x4.pt")
    assert (loaded.route, loaded.architecture, loaded.scale) == ("srmos", "srresnet", 4)
    assert loaded.convention["output_range"] == "-1,1"
    lr = lr_image(10, 13)
    ours = upscale_with(loaded, [lr], 4)[0].astype(int)
    builtin = upscale_images(model.fused(), [lr], 4)[0].astype(int)
    assert np.abs(ours - builtin).max() <= 1


def _resnet18(path):
    import torchvision

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)


def _pickled_object(path):
    import argparse

    torch.save({"args": argparse.Namespace(lr=1), "params": Compact().state_dict()}, path)


def _truncated(path):
    save(Compact(num_feat=8, num_conv=1), path)
    path.write_bytes(path.read_bytes()[:300])


REFUSALS = {
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(999)), {},
                     "not a model file"),
    "truncated": (_truncated, {}, "damaged zip archive"),
    "classifier": (_resnet18, {}, r"not a super-resolution model spandrel knows \(keys conv1"
                   r".*supported: RealESRGAN Compact, .*ESRGAN, .*or register it with a class"),
    "pickled object": (_pickled_object, {}, r"pickled Python objects \(argparse.Namespace\)"),
    "no such class": (lambda p: save(PixelShuffleNet(), p),
                      {"route": "class", "class_path": "tests.sr_custom_model:Nope"},
                      "class tests.sr_custom_model:Nope is not importable"),
    "bad kwargs": (lambda p: save(PixelShuffleNet(), p),
                   {"route": "class", "class_path": CUSTOM, "kwargs": {"depth": 3}},
                   r"PixelShuffleNet\(\*\*\{'depth': 3\}\) fails .*fix the constructor kwargs"),
    "weights of another size": (lambda p: save(PixelShuffleNet(scale=2), p),
                                {"route": "class", "class_path": CUSTOM, "kwargs": {"scale": 4}},
                                "the weights do not fit PixelShuffleNet"),
    "bad convention": (lambda p: save(PixelShuffleNet(), p),
                       {"route": "class", "class_path": CUSTOM,
                        "convention": {"input_range": "0,255"}},
                       "convention input_range '0,255' not understood; use 0,1 or -1,1"),
    "declared scale": (lambda p: save(Compact(num_feat=8, num_conv=1, upscale=2), p),
                       {"scale": 4}, "model upscales x2, not the declared x4"),
    "convention of a known kind": (lambda p: save(Compact(num_feat=8, num_conv=1), p),
                                   {"convention": {"channel_order": "bgr"}},
                                   "a spandrel model's convention is .*; declare none"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_it_refuses_in_one_line_naming_the_file(tmp_path, case):
    make, options, message = REFUSALS[case]
    path = tmp_path / "model.pth"
    make(path)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_model(path, **options)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_it_refuses_a_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="model file not found"):
        load_model(tmp_path / "gone.pth")


def test_it_tiles_without_visible_seams_when_overlap_covers_the_receptive_field(tmp_path):
    torch.manual_seed(3)
    model = Compact(num_feat=16, num_conv=4, upscale=2)  # receptive radius 6 LR pixels
    loaded = load_model(save(model, tmp_path / "c.pth"))
    lr = lr_image(70, 53, seed=3)
    whole = upscale_with(loaded, [lr], 2, tile=None)[0].astype(int)
    tiled = upscale_with(loaded, [lr], 2, tile=24, overlap=16)[0].astype(int)
    assert whole.shape == (140, 106, 3)
    assert np.abs(whole - tiled).max() <= 1


def test_an_rrdbnet_deeper_than_the_overlap_tiles_within_a_grey_level(tmp_path):
    """2 RRDB blocks reach ~33 LR pixels, twice the overlap, so tiles see less context than the
    whole image; with random weights far context weighs little (largest float gap 2e-5 grey
    levels; 24 without overlap; 23 blocks: also within 1). Trained weights may reach further."""
    torch.manual_seed(4)
    loaded = load_model(save(ESRGAN(num_filters=16, num_blocks=2, scale=2), tmp_path / "r.pth"))
    lr = lr_image(60, 45, seed=4)
    whole = upscale_with(loaded, [lr], 2, tile=None)[0].astype(int)
    tiled = upscale_with(loaded, [lr], 2, tile=20, overlap=16)[0].astype(int)
    assert np.abs(whole - tiled).max() <= 1


def test_it_batches_equal_sizes_and_keeps_the_order(tmp_path):
    loaded = load_model(save(Compact(num_feat=8, num_conv=2, upscale=2), tmp_path / "c.pth"))
    images = [lr_image(8, 8, 0), lr_image(5, 9, 1), lr_image(8, 8, 2), lr_image(5, 9, 3)]
    together = upscale_with(loaded, images, 2)
    alone = [upscale_with(loaded, [im], 2)[0] for im in images]
    for a, b in zip(together, alone, strict=True):
        assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1
    with pytest.raises(ValueError, match="model upscales x2, asked for x4"):
        upscale_with(loaded, images, 4)


def test_it_runs_half_precision_on_a_copy(tmp_path):
    loaded = load_model(save(Compact(num_feat=8, num_conv=2, upscale=2), tmp_path / "c.pth"))
    lr = lr_image(16, 12)
    full = upscale_with(loaded, [lr], 2)[0].astype(int)
    half = upscale_with(loaded, [lr], 2, half=True)[0].astype(int)
    assert np.abs(full - half).max() <= 2
    assert next(loaded.module.parameters()).dtype == torch.float32
    assert next(loaded.half_module.parameters()).dtype == torch.float16
    assert np.array_equal(upscale_with(loaded, [lr], 2)[0], full)


def linear(n_floats):
    return torch.nn.Linear(n_floats, 1, bias=False)  # n_floats * 4 bytes


def test_the_cache_loads_once_and_evicts_the_least_recently_used():
    cache = ModelCache(budget_bytes=3000 * 4)
    loads = []

    def loader(key):
        return lambda: loads.append(key) or linear(1000)

    for key in "abc":
        cache.get(key, loader(key))
    assert cache.get("a", loader("a")) is cache.get("a", loader("a"))
    cache.get("d", loader("d"))  # 4 models of 4000 bytes: b, least recently used, goes
    assert cache.keys() == ["c", "a", "d"] and loads == ["a", "b", "c", "d"]
    cache.get("b", loader("b"))
    assert cache.keys() == ["a", "d", "b"] and loads[-1] == "b"
    cache.get("big", lambda: linear(5000))  # over the budget alone: kept, every other one goes
    assert cache.keys() == ["big"]


def test_the_cache_loads_a_model_once_under_concurrent_requests():
    cache, loads = ModelCache(budget_bytes=10**6), []
    barrier = threading.Barrier(6)

    def work():
        barrier.wait()
        cache.get("m", lambda: loads.append(1) or linear(10))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [1]


def test_the_cache_counts_a_loaded_models_half_copy(tmp_path):
    loaded = load_model(save(Compact(num_feat=8, num_conv=2, upscale=2), tmp_path / "c.pth"))
    assert isinstance(loaded, LoadedModel)
    full = model_bytes(loaded)
    assert full == 4 * n_params(loaded.module)
    upscale_with(loaded, [lr_image()], 2, half=True)
    assert model_bytes(loaded) == full + full // 2


def test_the_default_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SRMOS_MODEL_CACHE_MB", "1.5")
    assert budget_from_env() == 1536 * 1024
    monkeypatch.delenv("SRMOS_MODEL_CACHE_MB")
    assert budget_from_env() == 2048 * 2**20
    monkeypatch.setenv("SRMOS_MODEL_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="SRMOS_MODEL_CACHE_MB must be a number"):
        budget_from_env()


def _tampered(source, out, member_suffix, change):
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, change(data) if info.filename.endswith(member_suffix) else data)
    return out


@pytest.mark.parametrize(
    ("member", "change"),
    [
        (
            "model_weights_config.json",
            lambda b: b.replace(b'"use_pickle": false', b'"use_pickle": true'),
        ),
        ("sample_inputs/model.pt", lambda b: _pickle_bytes()),
    ],
)
def test_it_refuses_an_export_that_torch_would_unpickle(exports, tmp_path, member, change):
    folder, _ = exports
    path = _tampered(folder / "dynamic.pt2", tmp_path / "tampered.pt2", member, change)
    with pytest.raises(CheckpointError, match="holds pickled Python objects, which torch.export"):
        load_model(path)


def _pickle_bytes():
    import argparse
    import io

    buffer = io.BytesIO()
    torch.save(argparse.Namespace(payload=1), buffer)
    return buffer.getvalue()
