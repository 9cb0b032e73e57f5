"""Model files are data until proven otherwise: archives that Python's zipfile and torch would
read differently, or that hold members their writer never writes, are refused before torch
touches them, by `sr_models` and by a registration on a real worker; a refused file leaves
storage."""

import contextlib
import io
import json
import time
import warnings
import zipfile

import pytest
import torch
from django.core.management import CommandError, call_command
from spandrel.architectures.Compact import Compact

from sr_models.errors import CheckpointError
from sr_models.external import load_model
from sr_models.model_files import file_kind
from study.generation import registering, tasks
from study.models import Method, ModelRegistration
from tests.conftest import worker_env
from tests.sr_custom_model import PixelShuffleNet
from tests.test_byom import state_dict_file

CONSTANTS = "data/constants/model_constants_config.json"


class MakesMarker:
    """Unpickled, it creates the file `marker`: the proof that a pickle's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def exported_program(path):
    from torch.export import Dim, export, save

    torch.manual_seed(0)
    dims = {"x": {0: Dim("n"), 2: Dim("h"), 3: Dim("w")}}
    net = PixelShuffleNet(scale=4).eval()
    save(export(net, (torch.rand(2, 3, 16, 16),), dynamic_shapes=dims), path)
    return path


def rewritten(source, out, change):
    """A copy of zip `source` whose members are `change(name, data)`: a list of (name, data)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w") as dst:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, and writes it
            for info in src.infolist():
                for name, data in change(info.filename, src.read(info)):
                    dst.writestr(name, data)
    return out


def duplicate_config_pt2(folder, marker):
    """The finding: a .pt2 whose constants config appears twice, the first copy (which torch
    reads) naming a pickled constant that creates `marker`, the second (zipfile's) empty."""
    payload = io.BytesIO()
    torch.save(MakesMarker(marker), payload)
    entry = {"path_name": "tensor_constant0", "is_param": False, "use_pickle": True}

    def change(name, data):
        if not name.endswith(CONSTANTS):
            return [(name, data)]
        folder_name = name.split("/")[0]
        return [
            (name, json.dumps({"config": {"c": {**entry, "tensor_meta": None}}})),
            (f"{folder_name}/data/constants/tensor_constant0", payload.getvalue()),
            (name, json.dumps({"config": {}})),
        ]

    return rewritten(exported_program(folder / "clean.pt2"), folder / "evil.pt2", change)


def test_a_pt2_with_a_member_twice_is_refused_before_torch_runs_its_pickle(tmp_path):
    marker = tmp_path / "code-ran"
    evil = duplicate_config_pt2(tmp_path, marker)
    with pytest.raises(CheckpointError, match=f"a zip archive holding {CONSTANTS} twice"):
        load_model(evil)
    assert not marker.exists()
    # The payload is live: torch itself, asked to load the file, runs it.
    with contextlib.suppress(Exception):  # the constant is no tensor, found after it ran
        torch.export.load(evil).module()
    assert marker.exists()


def _twice(member):
    return lambda name, data: [(name, data)] * (2 if name.endswith(member) else 1)


def _plus(extra_name, extra_data=b"x"):
    def change(name, data):
        out = [(name, data)]
        if name.endswith("/byteorder"):
            out.append((name.replace("byteorder", extra_name), extra_data))
        return out

    return change


def _pickled_constant(name, data):
    if not name.endswith(CONSTANTS):
        return [(name, data)]
    entry = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": False}
    return [(name, json.dumps({"config": {"c": entry}}))]


ARCHIVE_REFUSALS = {
    # case: (change to a .pt2, change to a torch.save zip, the message)
    "a member twice": (_twice("models/model.json"), _twice("data.pkl"), "twice"),
    "a stray member": (_plus("payload.pkl"), _plus("payload.pkl"), "unexpected member"),
    "a legacy export member": (_plus("serialized_exported_program.json"), None, "unexpected"),
    "a pickled constant": (_pickled_constant, None, "holds pickled Python objects"),
}


@pytest.mark.parametrize("case", ARCHIVE_REFUSALS)
def test_an_archive_with_what_its_writer_never_writes_is_refused(tmp_path, case):
    to_export, to_state, message = ARCHIVE_REFUSALS[case]
    program = exported_program(tmp_path / "p.pt2")
    with pytest.raises(CheckpointError, match=message):
        load_model(rewritten(program, tmp_path / "bad.pt2", to_export))
    if to_state:
        torch.save(Compact(num_feat=8, num_conv=1).state_dict(), tmp_path / "c.pth")
        with pytest.raises(CheckpointError, match=message):
            load_model(rewritten(tmp_path / "c.pth", tmp_path / "bad.pth", to_state))


def test_an_archive_the_two_zip_readers_could_read_differently_is_refused(tmp_path):
    torch.save(Compact(num_feat=8, num_conv=1).state_dict(), tmp_path / "c.pth")
    good = (tmp_path / "c.pth").read_bytes()
    assert file_kind(tmp_path / "c.pth") == "state"
    # A local header naming another member than the central directory does.
    at = good.index(b"byteorder")  # the first occurrence is in the local header
    misnamed = good[:at] + b"byteordeR" + good[at + 9 :]
    cases = {
        "misnamed.pth": (misnamed, "misnamed"),
        "appended.pth": (good + b"trailing bytes", "data before or after it"),
        "prepended.pth": (b"\x80\x02}q\x00." + good, "data before or after it"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path / name)


# --- through the registration, on a real worker -------------------------------------------


@pytest.fixture
def worker(start_worker, media_root, settings):
    return start_worker(worker_env(settings.CELERY_BROKER_URL, media_root))


def stored_models(media_root):
    return sorted(p.name for p in (media_root / "models").glob("*"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_duplicate_member_pt2_is_refused_by_add_method_and_leaves_nothing(
    worker, media_root, tmp_path
):
    marker = tmp_path / "code-ran"
    evil = duplicate_config_pt2(tmp_path, marker)
    with pytest.raises(CommandError, match=f"evil-cli refused: evil.pt2: .*{CONSTANTS} twice"):
        call_command("add_method", str(evil), "evil-cli", timeout=120)
    assert not marker.exists()
    assert ModelRegistration.objects.get(slug="evil-cli").status == ModelRegistration.REFUSED
    assert not Method.objects.filter(slug="evil-cli").exists()
    assert stored_models(media_root) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_duplicate_member_pt2_is_refused_by_the_admin_form_and_leaves_nothing(
    worker, media_root, tmp_path, client, researcher
):
    marker = tmp_path / "code-ran"
    evil = duplicate_config_pt2(tmp_path, marker)
    client.force_login(researcher)
    form = {"slug": "evil-admin", "route": "auto", "scale": 4, "input_range": "0,1"}
    form.update(output_range="0,1", channels="rgb")
    with evil.open("rb") as f:
        reply = client.post("/admin/study/modelregistration/add/", {**form, "model_file": f})
    assert reply.status_code == 302, reply.content.decode()[:2000]
    registration = ModelRegistration.objects.get(slug="evil-admin")
    deadline = time.monotonic() + 120
    while not registration.settled:
        assert time.monotonic() < deadline, "no verdict from the worker"
        time.sleep(0.3)
        registration.refresh_from_db()
    page = client.get(reply.url).content.decode()
    assert (
        'id="model-refusal"' in page
        and f"evil.pt2: a zip archive holding {CONSTANTS} twice" in page
    )
    assert not marker.exists()
    assert not Method.objects.filter(slug="evil-admin").exists()
    assert stored_models(media_root) == []


# --- refused files leave storage (the worker's task, run here) ----------------------------


def register_and_check(path, slug, scale):
    with path.open("rb") as f:
        registration = registering.register(f, path.name, slug=slug, scale=scale, enqueue=False)
    tasks.validate_model(registration.pk)
    registration.refresh_from_db()
    return registration


@pytest.mark.django_db
def test_a_file_refused_by_validation_is_deleted_from_storage(media_root, tmp_path):
    x2 = state_dict_file(Compact(num_feat=8, num_conv=1, upscale=2), tmp_path / "x2.pth")
    refused = register_and_check(x2, "own-x2", scale=4)
    assert refused.status == ModelRegistration.REFUSED
    assert "model upscales x2, not the declared x4" in refused.error
    assert stored_models(media_root) == []


@pytest.mark.django_db
def test_a_refused_file_stays_while_a_valid_registration_holds_the_same_content(
    media_root, tmp_path
):
    x4 = state_dict_file(Compact(num_feat=8, num_conv=1, upscale=4), tmp_path / "x4.pth")
    valid = register_and_check(x4, "own-x4", scale=4)
    assert valid.status == ModelRegistration.VALID, valid.error
    refused = register_and_check(x4, "own-x4-as-x2", scale=2)
    assert refused.status == ModelRegistration.REFUSED and refused.file == valid.file
    assert stored_models(media_root) == [valid.file.split("/")[1]]
