"""The researcher's cockpit in headless Chromium: links, preview, simulated raters, funnel,
approval lists."""

import pytest

from study.models import Campaign, Rater
from tests.conftest import admin_login, screenshot, start_session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_researcher_previews_pilots_and_reads_the_funnel(
    live_campaign, researcher, live_server, browser
):
    base = live_server.url
    Campaign.objects.filter(pk=live_campaign.pk).update(open_recruitment=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    page.set_default_timeout(15000)
    admin_login(page, base)
    change = f"{base}/admin/study/campaign/{live_campaign.pk}/change/"
    page.goto(change)
    # Absolute links, copied with one click.
    link = page.locator("#recruitment-link").inner_text()
    assert link == f"{base}/join/{live_campaign.recruit_token}/"
    page.locator("#recruitment-link + .copy-link").click()
    page.wait_for_selector("text=Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    assert "about 1 minute" in page.inner_text("#session-length")
    # The preview opens the real session in a new tab, with a banner.
    with context.expect_page() as new_tab:
        page.click("#preview")
    preview = new_tab.value
    preview.wait_for_selector("#preview-banner")
    rater = Rater.objects.get(platform="preview")
    start_session(preview, base, rater)
    preview.wait_for_selector("#vote-form button[value='1']:enabled")
    preview.keyboard.press("4")
    preview.wait_for_function("() => document.body.dataset.painted === '1'")
    assert rater.trials.answered().count() == 1
    preview.close()
    # Simulated raters from the admin, for a pilot report.
    page.goto(change)
    page.click("text=Simulated raters")
    page.fill("#id_raters", "4")
    page.click("#simulate")
    page.wait_for_selector("text=4 simulated raters (2 careless) added")
    # A person starts, the funnel shows them; simulated and preview sessions are not people.
    person = live_campaign.raters.filter(platform="link").first()
    other = context.new_page()
    other.goto(f"{base}{person.get_absolute_url()}")
    other.close()
    page.goto(change)
    funnel = page.inner_text("#funnel")
    assert "opened\t1" in funnel and "completed\t0" in funnel
    screenshot(page, "funnel")
    # Approval lists: choose thresholds, read the decisions.
    page.goto(f"{base}/admin/study/campaign/{live_campaign.pk}/approvals/")
    page.select_option("#id_platform", "prolific")
    page.click("#show-decisions")
    page.wait_for_selector("#approvals")
    assert "No participants from this platform yet" in page.inner_text("#approvals")
    context.close()


def test_a_researcher_clones_a_frozen_campaign_with_a_new_name_and_seed(
    live_campaign, researcher, live_server, page
):
    base = live_server.url
    admin_login(page, base)
    page.goto(f"{base}/admin/study/campaign/")
    page.check(f"input[name=_selected_action][value='{live_campaign.pk}']")
    page.select_option("select[name=action]", label="Clone (a new draft with the same design)")
    page.click("button[name=index]")
    page.wait_for_selector("#confirm-clone")
    assert page.input_value("#id_name") == "pilot-copy"
    page.fill("#id_name", "pilot-rerun")
    page.fill("#id_seed", "2024")
    page.click("#confirm-clone")
    page.wait_for_selector("text=cloned as")
    copy = Campaign.objects.get(name="pilot-rerun")
    assert copy.status == Campaign.DRAFT and copy.seed == 2024
    page.click("text=pilot-rerun")
    # The clone's design is open: the kernel is a choice again.
    page.wait_for_selector("select[name=kernel]")
