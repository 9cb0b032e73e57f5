"""Registering a model from the admin: in headless Chromium with a real worker (the page follows
the check to its verdict), who may register, and a campaign that refuses a model of another
scale."""

import pytest
import torch
from django.contrib.auth.models import Permission
from django.forms import modelform_factory
from spandrel.architectures.Compact import Compact

from study.admin import CampaignForm
from study.generation.queue import start_generation
from study.models import Campaign, Method, ModelRegistration
from tests.conftest import admin_login, screenshot, worker_env
from tests.test_byom import state_dict_file

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.mark.browser
def test_a_researcher_registers_a_model_and_the_page_follows_the_worker_to_the_verdict(
    researcher, live_server, page, start_worker, media_root, settings, tmp_path
):
    start_worker(worker_env(settings.CELERY_BROKER_URL, media_root))
    good = state_dict_file(Compact(num_feat=8, num_conv=2, upscale=4), tmp_path / "compact.pth")
    wrong = state_dict_file(Compact(num_feat=8, num_conv=2, upscale=2), tmp_path / "x2.pth")
    base = live_server.url
    admin_login(page, base)

    def register(path, name):
        page.goto(f"{base}/admin/study/method/")
        page.click("#register-model")
        page.set_input_files("#id_model_file", str(path))
        page.fill("#id_slug", name)
        page.fill("#id_scale", "4")
        page.click("input[name=_save]")
        page.wait_for_selector("#model-waiting, #model-refusal, #model-registered")
        page.wait_for_selector("#model-refusal, #model-registered", timeout=120_000)

    register(good, "my-compact")
    assert "Registered: the method can be added to campaigns." in page.content()
    assert "RealESRGAN Compact" in page.content()
    screenshot(page, "model-registered")
    method = Method.objects.get(slug="my-compact")
    assert method.registration.parameter_count == sum(
        p.numel() for p in Compact(num_feat=8, num_conv=2, upscale=4).parameters()
    )
    page.goto(f"{base}/admin/study/method/")
    assert "RealESRGAN Compact, x4" in page.text_content("#result_list")

    register(wrong, "my-x2")
    assert "model upscales x2, not the declared x4" in page.text_content("#model-refusal")
    assert not Method.objects.filter(slug="my-x2").exists()
    screenshot(page, "model-refused")


def test_only_staff_with_the_register_permission_may_register_a_model(
    client, django_user_model, tmp_path
):
    staff = django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_method"))
    client.force_login(staff)
    assert "register-model" not in client.get("/admin/study/method/").content.decode()
    path = state_dict_file(Compact(num_feat=8, num_conv=2, upscale=4), tmp_path / "c.pth")
    with path.open("rb") as f:
        reply = client.post(
            "/admin/study/modelregistration/add/", {"model_file": f, "slug": "sneaky", "scale": 4}
        )
    assert reply.status_code == 403
    assert not ModelRegistration.objects.exists()
    staff.user_permissions.add(Permission.objects.get(codename="register_model"))
    staff = django_user_model.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert "register-model" in client.get("/admin/study/method/").content.decode()
    # The register permission alone is enough to follow a check to its verdict.
    assert client.get("/admin/study/modelregistration/").status_code == 200


def test_a_model_of_another_scale_cannot_join_a_campaign(make_campaign, settings):
    method = Method.objects.create(slug="own-x2", kind=Method.NETWORK)
    ModelRegistration.objects.create(
        slug="own-x2", scale=2, file="models/x.pth", sha256="0" * 64, status="valid", method=method
    )
    campaign = make_campaign(methods=["bicubic", "own-x2"])
    refusal = "own-x2 upscales x2, the campaign needs x4"
    with pytest.raises(ValueError, match=refusal):
        start_generation(campaign)
    form_class = modelform_factory(
        Campaign, form=CampaignForm, fields=["name", "scale", "kernel", "methods"]
    )
    data = {"name": "other", "kernel": campaign.kernel, "methods": [method.pk]}
    form = form_class(data={**data, "scale": 4})
    assert not form.is_valid()
    assert refusal in " ".join(form.errors["methods"])
    assert form_class(data={**data, "scale": 2}).is_valid()


def test_a_registered_model_file_is_loaded_with_weights_only(tmp_path):
    """A pickle that would run code is not loaded (torch.load(weights_only=True))."""

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"weights": Evil()}, tmp_path / "evil.pth")
    from sr_models.errors import CheckpointError
    from sr_models.external import load_model

    with pytest.raises(CheckpointError):
        load_model(tmp_path / "evil.pth")
