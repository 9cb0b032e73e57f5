"""Degradation category rating (ITU-T P.910 / P.800 DCR): each image beside its HR reference,
rated on the impairment scale; walked in headless Chromium, with its refusals and exports."""

import time

import pytest

from study.datasets.importing import import_folder
from study.generation.queue import start_generation
from study.models import Campaign, Dataset, Trial
from tests.conftest import (
    generate_and_launch,
    screenshot,
    start_session,
    wait_for_image,
    wait_until_ready,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dcr_campaign(make_campaign, image_folder, eager_celery, django_capture_on_commit_callbacks):
    import_folder("calib", image_folder(1, name="calib"), is_calibration=True)
    campaign = make_campaign()
    campaign.protocol = Campaign.DCR
    campaign.calibration_dataset = Dataset.objects.get(name="calib")
    campaign.calibration_images = 1
    campaign.save()
    return generate_and_launch(campaign, django_capture_on_commit_callbacks)


def natural_and_shown(page, element_id):
    return page.evaluate(
        "id => { const i = document.getElementById(id);"
        " return [i.naturalWidth, i.getBoundingClientRect().width * devicePixelRatio,"
        " i.complete, i.style.visibility]; }",
        element_id,
    )


@pytest.mark.browser
@pytest.mark.slow
def test_a_rater_walks_a_dcr_session_with_the_reference_beside_each_image(
    dcr_campaign, live_server, browser
):
    base = live_server.url
    rater = dcr_campaign.raters.first()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    start_session(page, base, rater)
    # Calibration: each example beside its reference, labelled on the impairment scale.
    labels = []
    for _ in range(2):
        item = page.locator(".calibration-item:not([hidden])")
        assert item.locator("img").count() == 2
        labels.append(item.locator("figcaption.anchor-label").text_content())
        page.keyboard.press("Enter")
    assert labels == ["1 - very annoying", "5 - imperceptible"]
    n = rater.trials.count()
    scores = [(i % 5) + 1 for i in range(n)]
    for i, score in enumerate(scores):
        wait_for_image(page, i + 1)
        wait_until_ready(page)
        # Both painted at 1:1 device pixels, side by side, before a score is taken.
        for element in ("ref-image", "stimulus"):
            natural, shown, complete, visibility = natural_and_shown(page, element)
            assert complete and natural > 0 and shown == pytest.approx(natural)
            assert visibility == ""
        if i == 0:
            assert "Compared with the reference" in page.text_content("#scale-question")
            assert page.get_by_role("button", name="5 - Imperceptible").is_visible()
            screenshot(page, "dcr-trial")
        page.keyboard.press(str(score))
    page.wait_for_selector("text=Thank you!")
    for _ in range(50):
        if Trial.objects.filter(rater=rater).answered().count() == n:
            break
        time.sleep(0.1)
    stored = list(rater.trials.order_by("position").values_list("score", flat=True))
    assert stored == scores


def test_the_reference_is_served_only_for_the_current_and_next_trial(dcr_campaign, client):
    from tests.conftest import get_ready

    rater = dcr_campaign.raters.first()
    get_ready(client, rater)
    client.post(f"/r/{rater.token}/calibration/")
    page = client.get(rater.get_absolute_url()).content.decode()
    assert f"/r/{rater.token}/ref/0.png" in page and "Reference" in page
    assert client.get(f"/r/{rater.token}/ref/0.png")["Content-Type"] == "image/png"
    assert client.get(f"/r/{rater.token}/ref/1.png").status_code == 200  # prefetched
    assert client.get(f"/r/{rater.token}/ref/5.png").status_code == 404


def test_an_acr_campaign_serves_no_reference(live_campaign, client):
    rater = live_campaign.raters.first()
    assert client.get(f"/r/{rater.token}/ref/0.png").status_code == 404


def test_dcr_without_the_hr_reference_is_refused_and_exports_say_the_protocol(
    make_campaign, dcr_campaign, tmp_path
):
    campaign = make_campaign(methods=("nearest", "bicubic"), name="no-ref")
    campaign.protocol = Campaign.DCR
    campaign.save()
    with pytest.raises(ValueError, match="DCR, which shows each image beside its HR reference"):
        start_generation(campaign)
    from study.rating.simulated import add_simulated_raters
    from study.reports.frames import export_report

    add_simulated_raters(dcr_campaign, 4, seed=0)
    from django.contrib.auth import get_user_model
    from django.test import Client

    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("r", "r@x.org", "pw-r-123456"))
    html = staff.get(f"/admin/study/campaign/{dcr_campaign.pk}/report/").content.decode()
    assert 'id="dcr-note"' in html and "DMOS" in html
    export_report(dcr_campaign, tmp_path, plots_enabled=False)
    assert (
        "protocol: DCR: each image beside its HR reference"
        in (tmp_path / "campaign.txt").read_text()
    )
