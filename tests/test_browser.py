"""The thin path as people use it, in headless Chromium: a researcher in the admin, a rater."""

import io
import time

import pandas as pd
import pytest

from study.models import Campaign, Dataset, Trial
from tests.conftest import screenshot, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]


def login(page, base, researcher):
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "researcher")
    page.fill("#id_password", "pw-researcher-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def run_action(page, base, campaign, label):
    page.goto(f"{base}/admin/study/campaign/")
    page.check(f"input[name=_selected_action][value='{campaign.pk}']")
    page.select_option("select[name=action]", label=label)
    page.click("button[name=index]")


def rate_everything(page, base, rater, scores):
    page.goto(f"{base}{rater.get_absolute_url()}")
    given = []
    for i, score in enumerate(scores):
        page.wait_for_selector("#stimulus")
        assert page.text_content(".counter") == f"Image {i + 1} of {len(scores)}"
        # 1:1 device pixels: the CSS size times the pixel ratio is the file's own size.
        natural, shown, ratio = page.evaluate(
            "() => { const i = document.getElementById('stimulus');"
            " return [i.naturalWidth, i.getBoundingClientRect().width, window.devicePixelRatio]; }"
        )
        assert natural > 0 and shown * ratio == pytest.approx(natural)
        if i == 0:
            screenshot(page, "rater-trial")
        if i % 2:
            page.keyboard.press(str(score))
        else:
            page.get_by_role("button", name=f"{score} - ").click()
        given.append(score)
        page.wait_for_load_state()
    page.wait_for_selector("text=Thank you!")
    screenshot(page, "rater-done")
    return given


def test_a_rater_scores_every_image_and_the_votes_are_stored(live_campaign, live_server, page):
    rater = live_campaign.raters.first()
    scores = [(i % 5) + 1 for i in range(rater.trials.count())]
    rate_everything(page, live_server.url, rater, scores)
    stored = list(
        Trial.objects.filter(rater=rater).order_by("position").values_list("score", flat=True)
    )
    assert stored == scores
    html = page.content().lower()
    assert "bicubic" not in html and "nearest" not in html


def test_a_researcher_runs_the_thin_path_in_the_admin(
    dataset, builtin_methods, researcher, live_server, page, start_worker, media_root, settings
):
    start_worker(worker_env(settings.CELERY_BROKER_URL, media_root))
    base = live_server.url
    login(page, base, researcher)

    page.goto(f"{base}/admin/study/campaign/add/")
    page.fill("#id_name", "browser-study")
    page.select_option("#id_datasets_from", label="tiny")
    page.click("#id_datasets_add")
    page.select_option("#id_methods_from", label=["nearest", "bicubic", "hr"])
    page.click("#id_methods_add")
    page.fill("#id_rater_links", "2")
    page.click("input[name=_save]")
    campaign = Campaign.objects.get(name="browser-study")
    assert set(campaign.datasets.all()) == {Dataset.objects.get(name="tiny")}

    started = time.monotonic()
    run_action(page, base, campaign, "Generate candidates")
    screenshot(page, "admin-generate")
    page.wait_for_selector("text=9 candidates queued for the workers")
    assert time.monotonic() - started < 10  # the request only queues the work
    for _ in range(300):
        campaign.refresh_from_db()
        if campaign.status == Campaign.READY:
            break
        time.sleep(0.3)
    assert campaign.status == Campaign.READY, campaign.progress()
    page.goto(f"{base}/admin/study/campaign/{campaign.pk}/change/")
    assert "done" in page.text_content("#progress")

    run_action(page, base, campaign, "Launch (make live, create rater links)")
    screenshot(page, "admin-launch")
    page.wait_for_selector("text=is live with 2 rater links")
    page.goto(f"{base}/admin/study/campaign/{campaign.pk}/change/")
    screenshot(page, "admin-campaign-live")
    links = page.eval_on_selector_all(
        "#rater-links a", "els => els.map(e => e.getAttribute('href'))"
    )
    assert len(links) == 2

    rater_page = page.context.new_page()
    rater = campaign.raters.get(token=links[0].split("/")[2])
    rate_everything(rater_page, base, rater, [5, 4, 3, 2, 1, 1, 2, 3, 4])

    with page.expect_download() as download:
        page.click("text=Raw votes (CSV)")
    votes = pd.read_csv(download.value.path())
    assert len(votes) == 9 and sorted(votes["score"]) == sorted([5, 4, 3, 2, 1, 1, 2, 3, 4])
    with page.expect_download() as download:
        page.click("text=MOS per method (CSV)")
    mos = pd.read_csv(io.StringIO(open(download.value.path()).read()))
    assert set(mos["method"]) == {"nearest", "bicubic", "hr"} and mos["n"].sum() == 9
