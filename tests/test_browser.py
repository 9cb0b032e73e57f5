"""The thin path as people use it, in headless Chromium: a researcher in the admin, a rater."""

import io
import time

import pandas as pd
import pytest

from study.models import Campaign, Dataset, Trial
from tests.conftest import screenshot, start_session, wait_for_image, wait_until_ready, worker_env

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


def check_native_size(page):
    # 1:1 device pixels: the CSS size times the pixel ratio is the file's own size.
    natural, shown, ratio = page.evaluate(
        "() => { const i = document.getElementById('stimulus');"
        " return [i.naturalWidth, i.getBoundingClientRect().width, window.devicePixelRatio]; }"
    )
    assert natural > 0 and shown * ratio == pytest.approx(natural)


def rate(page, scores, first_number=1, total=None, shot=None):
    """Score the trials on screen one after another, alternating keys and buttons."""
    for i, score in enumerate(scores):
        number = first_number + i
        wait_for_image(page, number)
        # The buttons come alive once this trial's image has loaded (and was seen long enough).
        wait_until_ready(page)
        check_native_size(page)
        if shot and i == 0:
            screenshot(page, shot)
        if i % 2:
            page.keyboard.press(str(score))
        else:
            page.get_by_role("button", name=f"{score} - ").click()
        if total and number == total:
            page.wait_for_selector("text=Thank you!")


def rate_everything(page, base, rater, scores):
    start_session(page, base, rater)
    rate(page, scores, total=len(scores), shot="rater-trial")
    screenshot(page, "rater-done")
    return scores


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


def test_the_whole_session_with_calibration_and_resume(calibrated_campaign, live_server, browser):
    base = live_server.url
    rater = calibrated_campaign.raters.first()
    laptop = browser.new_context(viewport={"width": 1280, "height": 900})
    page = laptop.new_page()
    start_session(page, base, rater, shot="session")
    screenshot(page, "session-2-calibration")
    labels = []
    for _ in range(4):
        visible = page.locator(".calibration-item:not([hidden]) figcaption")
        labels.append(visible.text_content())
        page.keyboard.press("Enter")
    assert labels == ["1 - bad", "5 - excellent", "1 - bad", "5 - excellent"]
    rate(page, [4, 2, 5, 1], shot="session-3-trial")
    for _ in range(50):
        if Trial.objects.filter(rater=rater).answered().count() == 4:
            break
        time.sleep(0.1)
    laptop.close()  # the rater closes the browser

    tablet = browser.new_context(viewport={"width": 1024, "height": 768}, device_scale_factor=2)
    page = tablet.new_page()
    page.goto(f"{base}{rater.get_absolute_url()}")  # consent is remembered, the display is not
    page.wait_for_selector("#stimulus, .calibration-item")
    assert page.text_content("#counter") == "Image 5 of 9"
    screenshot(page, "session-4-resumed")
    rate(page, [3, 3, 4, 5, 1], first_number=5, total=9)
    screenshot(page, "session-5-done")
    assert calibrated_campaign.completion_code in page.text_content("#completion-code")
    tablet.close()
    stored = list(
        Trial.objects.filter(rater=rater).order_by("position").values_list("score", flat=True)
    )
    assert stored == [4, 2, 5, 1, 3, 3, 4, 5, 1]
    assert all(
        d is not None
        for d in Trial.objects.filter(rater=rater).values_list("duration_ms", flat=True)
    )
    rater.refresh_from_db()
    assert len(rater.display_checks) == 2 and rater.display_checks[1]["dpr"] == 2


def test_a_double_click_stores_one_vote(live_campaign, live_server, page):
    rater = live_campaign.raters.first()
    start_session(page, live_server.url, rater)
    page.get_by_role("button", name="4 - ").dblclick()
    wait_for_image(page, 2)
    time.sleep(0.5)
    assert list(rater.trials.answered().values_list("position", "score")) == [(0, 4)]
    assert page.text_content("#counter").startswith("Image 2 of")


def test_a_break_is_suggested_every_n_images(live_campaign, live_server, page):
    type(live_campaign).objects.filter(pk=live_campaign.pk).update(break_every=2)
    rater = live_campaign.raters.first()
    start_session(page, live_server.url, rater)
    rate(page, [3, 4])
    page.wait_for_selector("#break:not([hidden])")
    screenshot(page, "rater-break")
    page.keyboard.press("5")  # no vote while the break is shown
    # The page behind the dialog is inert: Tab never reaches it (focus stays in the dialog or
    # leaves for the browser's own controls), nor do clicks or a screen reader's cursor.
    assert page.evaluate("document.getElementById('vote-form').closest('[inert]') !== null")
    for _ in range(4):
        page.keyboard.press("Tab")
        focused = (
            "(a => a === document.body || a.closest('#break') !== null)(document.activeElement)"
        )
        assert page.evaluate(focused)
    time.sleep(0.3)
    assert rater.trials.answered().count() == 2
    page.click("#break-continue")
    assert page.evaluate("document.querySelector('[inert]') === null")
    rate(page, [5], first_number=3)
    wait_for_image(page, 4)
    assert list(rater.trials.answered().values_list("score", flat=True)) == [3, 4, 5]


def test_a_vote_whose_answer_is_lost_is_resent_and_stored_once(live_campaign, live_server, page):
    rater = live_campaign.raters.first()
    start_session(page, live_server.url, rater)
    dropped = []

    def drop_first_answer(route):
        if not dropped:
            route.fetch()  # the vote reaches the server and is stored...
            dropped.append(1)
            route.abort("connectionreset")  # ...but the answer never reaches the page
        else:
            route.continue_()

    page.route("**/vote/", drop_first_answer)
    wait_until_ready(page)
    page.keyboard.press("4")
    wait_for_image(page, 2)
    assert dropped == [1]
    assert list(rater.trials.answered().values_list("position", "score")) == [(0, 4)]


def test_two_tabs_never_vote_twice_or_skip(live_campaign, live_server, browser):
    rater = live_campaign.raters.first()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    first = context.new_page()
    start_session(first, live_server.url, rater)
    second = context.new_page()
    second.goto(f"{live_server.url}{rater.get_absolute_url()}")
    second.wait_for_selector("#stimulus")
    first.get_by_role("button", name="5 - ").click()
    wait_for_image(first, 2)
    second.get_by_role("button", name="1 - ").click()  # a stale tab still shows image 1
    wait_for_image(second, 2)
    assert list(rater.trials.answered().values_list("position", "score")) == [(0, 5)]
    second.get_by_role("button", name="2 - ").click()
    wait_for_image(second, 3)
    assert list(rater.trials.answered().values_list("position", "score")) == [(0, 5), (1, 2)]
    context.close()


def test_a_small_window_is_asked_to_grow(live_campaign, live_server, browser):
    rater = live_campaign.raters.first()
    context = browser.new_context(viewport={"width": 360, "height": 180})
    page = context.new_page()
    page.goto(f"{live_server.url}{rater.get_absolute_url()}")
    page.check("input[name=consent]")
    page.click("text=Start")
    page.wait_for_selector("#too-small")
    screenshot(page, "display-too-small")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("#check-again")
    page.wait_for_selector("#stimulus")
    context.close()
    rater.refresh_from_db()
    assert [c["fits"] for c in rater.display_checks] == [False, True]


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
    assert len(links) == 2 and all(link.startswith(f"{base}/r/") for link in links)  # absolute

    rater_page = page.context.new_page()
    rater = campaign.raters.get(token=links[0].rstrip("/").split("/")[-1])
    rate_everything(rater_page, base, rater, [5, 4, 3, 2, 1, 1, 2, 3, 4])

    with page.expect_download() as download:
        page.click("text=Raw votes (CSV)")
    votes = pd.read_csv(download.value.path())
    assert len(votes) == 9 and sorted(votes["score"]) == sorted([5, 4, 3, 2, 1, 1, 2, 3, 4])
    with page.expect_download() as download:
        page.click("text=MOS per method (CSV)")
    mos = pd.read_csv(io.StringIO(open(download.value.path()).read()))
    assert set(mos["method"]) == {"nearest", "bicubic", "hr"} and mos["n"].sum() == 9
