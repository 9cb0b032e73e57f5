"""Bring your own model: files of every route registered through `add_method` and checked by a
real worker, then a campaign generated with them; the refusals, each with its message."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.SPAN import SPAN

from study.generation.queue import start_generation
from study.models import Method, ModelRegistration
from tests.conftest import worker_env
from tests.sr_custom_model import NaNNet, PixelShuffleNet
from tests.test_worker import wait_until_ready

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CUSTOM = "tests.sr_custom_model:PixelShuffleNet"


@pytest.fixture
def worker(start_worker, media_root, settings):
    return start_worker(worker_env(settings.CELERY_BROKER_URL, media_root))


def state_dict_file(model, path):
    torch.manual_seed(0)
    torch.save(model.state_dict(), path)
    return path


def model_files(folder):
    """One small random-weight x4 file per route: (method name, path, add_method options)."""
    torch.manual_seed(0)
    net = PixelShuffleNet(scale=4).eval()
    torch.jit.script(net).save(folder / "script.pt")
    from torch.export import Dim, export, save

    dims = {"x": {0: Dim("n"), 2: Dim("h"), 3: Dim("w")}}
    save(export(net, (torch.rand(2, 3, 16, 16),), dynamic_shapes=dims), folder / "prog.pt2")
    shutil.copy(ROOT / "sr_models/checkpoints/espcn_x4.pt", folder / "espcn.pt")
    return [
        ("own-esrgan", state_dict_file(ESRGAN(num_filters=8, num_blocks=1, scale=4), folder / "e.pth"), {}),
        ("own-compact", state_dict_file(Compact(num_feat=8, num_conv=2, upscale=4), folder / "c.pth"), {}),
        ("own-span", state_dict_file(SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=4), folder / "s.pth"), {}),
        (
            "own-class",
            state_dict_file(net, folder / "custom.pth"),
            {
                "route": "class",
                "class_path": CUSTOM,
                "kwargs": '{"scale": 4}',
                "input_range": "-1,1",
                "output_range": "-1,1",
                "channels": "bgr",
            },
        ),
        ("own-script", folder / "script.pt", {}),
        ("own-export", folder / "prog.pt2", {}),
        ("own-srmos", folder / "espcn.pt", {}),
    ]  # fmt: skip


def add_method(path, name, **options):
    call_command("add_method", str(path), name, timeout=180, **options)


def test_models_of_every_route_register_and_generate_a_campaign_on_a_real_worker(
    worker, make_campaign, tmp_path, capsys
):
    files = model_files(tmp_path)
    for name, path, options in files:
        add_method(path, name, **options)
    out = capsys.readouterr().out
    expected = {
        "own-esrgan": ("spandrel", "ESRGAN"),
        "own-compact": ("spandrel", "RealESRGAN Compact"),
        "own-span": ("spandrel", "SPAN"),
        "own-class": ("class", "PixelShuffleNet"),
        "own-script": ("torchscript", "PixelShuffleNet"),
        "own-export": ("export", None),
        "own-srmos": ("srmos", "espcn"),
    }
    for name, (route, architecture) in expected.items():
        reg = ModelRegistration.objects.get(slug=name)
        assert reg.status == ModelRegistration.VALID, reg.error
        assert reg.detected_route == route
        if architecture:
            assert reg.architecture.lower() == architecture.lower()
        assert reg.method.kind == Method.NETWORK and reg.scale == 4
        assert reg.parameter_count > 0 and len(reg.sha256) == 64
        assert f"{name} registered: " in out
    # The same file registered twice is stored once.
    add_method(files[0][1], "own-esrgan-again")
    assert len(list((tmp_path / "media" / "models").iterdir())) == len(files)

    campaign = make_campaign(methods=["bicubic", "hr", *expected, "own-esrgan-again"])
    start_generation(campaign)
    wait_until_ready(campaign)
    own = campaign.candidates.filter(method__slug__in=list(expected))
    assert own.count() == 3 * len(expected)
    assert all(c.psnr is not None and c.width == 64 and c.height == 48 for c in own)
    # The metric panel of network candidates follows on the CPU queue.
    from study.generation.queue import metrics_pending

    deadline = time.monotonic() + 60
    while metrics_pending(campaign):
        assert time.monotonic() < deadline, "metrics of network candidates not computed"
        time.sleep(0.3)
    assert all(set(c.metrics) == {"gmsd", "haarpsi"} for c in own.all())
    assert all(a == 1 for a in own.values_list("attempts", flat=True))
    # Exports name the exact model behind each method.
    from study.reports.frames import method_provenance

    provenance = method_provenance(campaign)
    esrgan = ModelRegistration.objects.get(slug="own-esrgan")
    assert provenance["own-esrgan"].startswith("own network ESRGAN (route spandrel, file e.pth")
    assert esrgan.sha256 in provenance["own-esrgan"]
    assert provenance["bicubic"] == "interpolation"


@pytest.fixture
def refusals(tmp_path):
    import torchvision

    (tmp_path / "corrupt.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    state_dict_file(torchvision.models.resnet18(weights=None), tmp_path / "resnet18.pth")
    state_dict_file(Compact(num_feat=8, num_conv=2, upscale=2), tmp_path / "x2.pth")
    state_dict_file(NaNNet(scale=4), tmp_path / "nan.pth")
    return tmp_path


REFUSALS = [
    ("corrupt.pth", {}, "corrupt.pth: not a model file"),
    ("resnet18.pth", {}, "resnet18.pth: not a super-resolution model spandrel knows"),
    ("x2.pth", {}, "model upscales x2, not the declared x4"),
    (
        "nan.pth",
        {"route": "class", "class_path": "tests.sr_custom_model:NaNNet", "kwargs": '{"scale": 4}'},
        "NaN",
    ),
]  # fmt: skip


def test_a_bad_model_is_refused_with_its_reason_and_nothing_is_registered(worker, refusals):
    for i, (file, options, message) in enumerate(REFUSALS):
        name = f"bad-{i}"
        with pytest.raises(CommandError) as refused:
            add_method(refusals / file, name, **options)
        assert message in str(refused.value), (file, str(refused.value))
        reg = ModelRegistration.objects.get(slug=name)
        assert reg.status == ModelRegistration.REFUSED and message in reg.error
        assert reg.method is None and not Method.objects.filter(slug=name).exists()
    # The file as the researcher named it, not its place in storage.
    assert "models/" not in ModelRegistration.objects.get(slug="bad-1").error
