"""Pages that follow the work without a reload (issue #25, finding 2), and what the admin's
pages print (finding 6): rounded numbers and sentences instead of library exceptions.

The campaign page is opened while a real Celery worker (on Redis) generates the candidates and
computes their metrics; the test never reloads it. A marker set in the page's window survives
only if the page itself never reloads either."""

import io
import struct
import time
import zlib
from datetime import timedelta

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from study.generation.queue import start_generation
from study.models import Campaign, ModelRegistration
from tests.conftest import admin_login, png_bytes, sample_image, screenshot, worker_env, zip_upload
from tests.test_worker import use_broker  # noqa: F401  (a fixture)

MARK = "() => { window.notReloaded = true; }"
NOT_RELOADED = "() => window.notReloaded === true"


def progress_numbers(page):
    """{state: count} as the campaign page's panel shows it now."""
    rows = page.eval_on_selector_all(
        "#progress tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])"
    )
    return {state: int(n) for state, n in rows}


@pytest.mark.browser
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_campaign_page_follows_a_real_worker_until_the_campaign_is_ready(
    researcher,
    live_server,
    page,
    make_campaign,
    start_worker,
    media_root,
    redis_url,
    use_broker,  # noqa: F811
):
    use_broker(redis_url, {"visibility_timeout": 3600})
    campaign = make_campaign()
    assert campaign.metrics, "the default metric panel: the page follows the metrics too"
    assert start_generation(campaign) == 9  # queued on Redis; no worker takes them yet
    base = live_server.url
    admin_login(page, base)
    page.goto(f"{base}/admin/study/campaign/{campaign.pk}/change/")
    assert progress_numbers(page)["queued"] == 9
    assert "Generating" in page.text_content(".field-status .readonly")
    assert "known once the first candidate is made" in page.text_content("#eta")
    page.evaluate(MARK)

    start_worker(worker_env(redis_url, media_root))
    page.wait_for_function(
        "() => document.querySelector('.field-status .readonly').textContent.includes('Ready')",
        timeout=180_000,
    )
    assert page.evaluate(NOT_RELOADED), "the page reloaded itself"
    assert progress_numbers(page) | {"queued": 0} == {
        "queued": 0,
        "running": 0,
        "done": 9,
        "failed": 0,
        "cancelled": 0,
    }
    assert page.evaluate("() => window.srmosFollow.settled") is True
    assert page.evaluate("() => window.srmosFollow.polls") >= 1
    assert "still wait" not in page.text_content("#generation-panel")
    # The action row follows too: Launch is enabled now, without a reload.
    assert page.is_enabled("#action-launch")
    polls = page.evaluate("() => window.srmosFollow.polls")
    time.sleep(3)
    assert page.evaluate("() => window.srmosFollow.polls") == polls, "it stops once settled"
    screenshot(page, "follow-campaign-ready")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_registration_page_follows_the_check_in_place_and_shows_the_verdict(
    researcher, live_server, page
):
    registration = ModelRegistration.objects.create(
        slug="mine", file="models/x.pth", sha256="0" * 64, original_name="NetG_epoch_4_100.pth"
    )
    base = live_server.url
    admin_login(page, base)
    page.goto(f"{base}/admin/study/modelregistration/{registration.pk}/change/")
    assert "Waiting for a worker" in page.text_content("#model-waiting")
    page.evaluate(MARK)

    # A worker takes the check: the page says so in place (it reloaded every 3 s before).
    ModelRegistration.objects.filter(pk=registration.pk).update(
        status=ModelRegistration.RUNNING,
        attempts=1,
        started_at=timezone.now(),
        lease_expires=timezone.now() + timedelta(minutes=5),
    )
    page.wait_for_function(
        "() => document.getElementById('model-waiting').textContent.includes('loading')"
    )
    assert page.evaluate(NOT_RELOADED), "the page reloaded while the check ran"
    assert page.text_content(".field-status .readonly").strip() == "Being validated"

    # The verdict: the page loads once more and shows what the worker found, rounded.
    ModelRegistration.objects.filter(pk=registration.pk).update(
        status=ModelRegistration.VALID,
        peak_memory_mb=541.8052978515625,
        validation_seconds=7.79813234400001,
        architecture="SRResNet",
        finished_at=timezone.now(),
    )
    page.wait_for_selector("#model-registered")
    assert page.text_content(".field-peak_memory .readonly").strip() == "542 MB"
    assert page.text_content(".field-validation_time .readonly").strip() == "7.8 s"
    assert "541.80" not in page.content() and "7.798" not in page.content()


@pytest.mark.django_db
def test_the_pages_print_rounded_numbers_and_the_names_as_typed(client, researcher):
    registration = ModelRegistration.objects.create(
        slug="mine",
        file="models/x.pth",
        sha256="0" * 64,
        size=12_345_678,
        original_name="NetG_epoch_4_100.pth",
        status=ModelRegistration.REFUSED,
        error="x",
        peak_memory_mb=541.8052978515625,
        validation_seconds=7.79813234400001,
    )
    client.force_login(researcher)
    html = client.get(
        reverse("admin:study_modelregistration_change", args=[registration.pk])
    ).content.decode()
    assert "542 MB" in html and "7.8 s" in html and "11.8 MB" in html
    assert "541.805" not in html and "7.798" not in html and "12345678" not in html
    # The form says which name is which.
    form = client.get(reverse("admin:study_modelregistration_add")).content.decode()
    assert "Display title" in form and "name in every table, figure, export" in form

    # A file name starts the sentence as it was typed, not capitalised by the admin.
    upload = io.BytesIO(b"weights")
    upload.name = "netG_epoch_4_100.pth"
    response = client.post(
        reverse("admin:study_modelregistration_add"),
        {"model_file": upload, "slug": "srgan-mine", "route": "auto", "scale": 4}
        | {"input_range": "0,1", "output_range": "0,1", "channels": "rgb"},
        follow=True,
    )
    assert "Model file netG_epoch_4_100.pth is stored" in response.content.decode()


def damaged_png():
    """A PNG whose image data is damaged but whose chunk checksums are right: Pillow opens it
    and fails while decoding (the library's own words were the whole message before)."""
    buffer = io.BytesIO()
    Image.fromarray(sample_image(9)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    for i in range(start + 8, start + 40):
        data[i] ^= 0x55
    chunk = bytes(data[start : start + 4 + length])
    data[start + 4 + length : start + 8 + length] = struct.pack(">I", zlib.crc32(chunk))
    return bytes(data)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_an_unreadable_image_in_a_zip_is_described_in_words(client, researcher):
    client.force_login(researcher)
    upload = zip_upload(
        {"set/good.png": png_bytes(sample_image(0)), "set/bad.png": damaged_png()}, "set.zip"
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            reverse("admin:study_dataset_import_zip"), {"name": "zipped", "archive": upload}
        )
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    row = html[html.index("<td>bad.png</td>") :]
    message = row[: row.index("</tr>")]
    sentence = message.split("Detail:")[0]
    assert "not a readable image: its data is damaged, so it cannot be decoded" in sentence
    assert "Error" not in sentence and "<_io" not in message and "0x" not in message


@pytest.mark.django_db
def test_an_outsider_gets_nothing_from_the_pages_polls(client, django_user_model, make_campaign):
    campaign = make_campaign()
    registration = ModelRegistration.objects.create(slug="mine", file="x.pth", sha256="0" * 64)
    django_user_model.objects.create_user("outsider", password="pw-outsider-1", is_staff=True)
    client.login(username="outsider", password="pw-outsider-1")
    campaign_poll = reverse("admin:study_campaign_generation_status", args=[campaign.pk])
    registration_poll = reverse("admin:study_modelregistration_status", args=[registration.pk])
    assert client.get(campaign_poll).status_code == 404
    assert client.get(registration_poll).status_code in (403, 404)
    assert "counts" not in client.get(campaign_poll).content.decode()


@pytest.mark.django_db
def test_a_candidates_numbers_are_rounded_on_its_pages(client, researcher, make_campaign):
    from study.models import Candidate, Method

    campaign = make_campaign()
    candidate = Candidate.objects.create(
        campaign=campaign,
        image=campaign.datasets.get().images.first(),
        method=Method.objects.get(slug="bicubic"),
        status=Candidate.DONE,
        psnr=31.415926535,
        ssim=0.912345678,
        seconds=0.123456789,
        metrics={"gmsd": 0.0812345678},
    )
    client.force_login(researcher)
    listing = client.get(reverse("admin:study_candidate_changelist")).content.decode()
    assert "31.42 dB" in listing and "0.9123" in listing and "31.4159" not in listing
    html = client.get(reverse("admin:study_candidate_change", args=[candidate.pk])).content
    html = html.decode()
    assert "0.1 s" in html and "gmsd 0.08123" in html
    assert "0.123456" not in html and "0.0812345" not in html
