"""Issue 25, findings 1 and 6, as a researcher meets them in the admin (headless Chromium): a
new campaign starts with the documented metric panel ticked, and a benchmark's `_HR` file names
become plain image names."""

import pytest

from study.models import SourceImage
from study.models.metrics import default_metrics
from tests.conftest import admin_login, png_bytes, sample_image, zip_upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_new_campaign_starts_with_the_documented_metric_panel(researcher, live_server, page):
    admin_login(page, live_server.url)
    page.goto(f"{live_server.url}/admin/study/campaign/add/")
    for name in default_metrics():
        assert page.is_checked(f"input[name=metrics][value={name}]"), name


def test_a_benchmark_s_hr_suffix_is_left_out_of_the_image_names(
    researcher, live_server, page, eager_celery, tmp_path
):
    entries = {
        f"HR/{name}_HR.png": png_bytes(sample_image(i)) for i, name in enumerate(["baby", "bird"])
    }
    archive = tmp_path / "set5.zip"
    archive.write_bytes(zip_upload(entries).getvalue())
    admin_login(page, live_server.url)
    page.goto(f"{live_server.url}/admin/study/dataset/")
    page.click("text=Import a zip")
    page.fill("#id_name", "set5")
    page.set_input_files("#id_archive", str(archive))
    page.click("#import-form input[type=submit]")
    page.wait_for_selector("#import-report")
    page.click("#import-target")
    page.wait_for_selector("text=baby")
    assert "baby_HR" not in page.text_content("#content").replace("baby_HR.png", "")
    rows = SourceImage.objects.filter(dataset__name="set5").order_by("name")
    assert list(rows.values_list("name", flat=True)) == ["baby", "bird"]
    assert [r.original_name.rsplit("/", 1)[-1] for r in rows] == ["baby_HR.png", "bird_HR.png"]
