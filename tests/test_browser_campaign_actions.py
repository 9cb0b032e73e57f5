"""The campaign's own page in headless Chromium: one row of actions (Generate, Launch, Preview,
Simulate raters, Close, Clone, Export report), each enabled only when it can run and otherwise
saying why, in the words the list actions and the commands use (issue 25: findings 3, 4, 5)."""

import pytest
from django.core.management import CommandError, call_command

from study.models import Campaign, Candidate, Rater
from study.rating.simulated import add_simulated_raters
from tests.conftest import admin_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROW = ["generate", "launch", "preview", "simulate", "close", "clone", "export"]


def open_campaign(page, base, campaign):
    page.goto(f"{base}/admin/study/campaign/{campaign.pk}/change/")
    page.wait_for_selector("#campaign-actions")


def enabled(page):
    """{action: whether its button can be pressed} of the page's row."""
    return {a: page.is_enabled(f"#action-{a}") for a in ROW}


def why(page, action):
    """What the page says about a disabled action: its tooltip, and the same in the notes."""
    title = page.get_attribute(f"#action-{action}", "title")
    assert page.inner_text(f"#why-{action}").endswith(title)
    return title


def messages(page):
    return page.inner_text("ul.messagelist")


def test_the_row_follows_the_campaign_from_draft_to_live(
    make_campaign, researcher, live_server, page
):
    from config.celery import app
    from study.generation.queue import start_generation

    base = live_server.url
    campaign = make_campaign()
    admin_login(page, base)
    open_campaign(page, base, campaign)
    # A draft: only Generate and Clone can run; the others say why.
    assert enabled(page) == dict.fromkeys(ROW, False) | {"generate": True, "clone": True}
    assert why(page, "launch") == campaign.refusal("launch")
    assert "is a draft" in why(page, "launch") and "Press Generate" in why(page, "launch")
    assert "no votes yet" in why(page, "export")
    page.click("#action-generate")  # queued for workers that are not running here
    page.wait_for_selector("text=9 candidates queued for the workers.")
    # Generating: Launch and Preview say how far the workers are.
    assert "still being generated (0 of 9 made)" in why(page, "launch")
    assert "still being generated (0 of 9 made)" in why(page, "preview")
    assert enabled(page)["generate"] and not enabled(page)["simulate"]
    Candidate.objects.filter(pk=campaign.candidates.first().pk).update(status=Candidate.FAILED)
    open_campaign(page, base, campaign)
    assert "(0 of 9 made, 1 failed: press Retry failed)" in why(page, "launch")
    Candidate.objects.filter(campaign=campaign).update(status=Candidate.QUEUED)
    app.conf.task_always_eager = True  # the workers' part, in this process
    try:
        start_generation(campaign)
    finally:
        app.conf.task_always_eager = False
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    open_campaign(page, base, campaign)
    assert (
        why(page, "generate")
        == "Nothing to generate: all candidates are made. Launch the campaign."
    )
    assert enabled(page)["launch"] and enabled(page)["preview"]
    page.click("#action-launch")
    page.wait_for_selector("text=is live with 2 rater links")
    # Live: simulate a pilot from the row; its seed is one no batch used.
    assert page.input_value("#simulate-seed") == "0"
    page.fill("#simulate-raters", "3")
    page.click("#action-simulate")
    page.wait_for_selector("text=3 simulated raters (0 careless) added")
    assert enabled(page)["export"] and enabled(page)["close"]
    assert "live with its 2 rater links" in why(page, "launch")
    assert "batch 1, seed 0 (3 raters)" in page.inner_text("#seeds-used")
    # The same seed again: the researcher is asked first, and told what it means.
    assert page.input_value("#simulate-seed") == "1"
    page.fill("#simulate-raters", "3")
    page.fill("#simulate-seed", "0")
    page.click("#action-simulate")
    warning = page.inner_text("#seed-warning")
    assert "Seed 0 was used already by batch 1 (3 raters)" in warning
    assert "draws different raters, not copies" in warning
    assert campaign.raters.simulated().count() == 3  # nothing added before the answer
    page.check("#repeat-seed")
    page.click("#simulate")
    page.wait_for_selector("text=3 simulated raters (0 careless) added")
    assert campaign.raters.simulated().count() == 6
    screenshot(page, "campaign-actions-live")
    # Export report downloads the zip.
    with page.expect_download() as download:
        page.click("#action-export")
    assert download.value.suggested_filename == "pilot-report.zip"


def test_simulated_raters_on_a_ready_campaign_name_launch_once(
    make_campaign, eager_celery, researcher, live_server, page
):
    """Finding 3: "campaign set5-lt is ready: launch it first", shown twice, and Launch only a
    list action."""
    from study.generation.queue import start_generation

    base = live_server.url
    campaign = make_campaign()
    start_generation(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    admin_login(page, base)
    open_campaign(page, base, campaign)
    reason = why(page, "simulate")
    assert reason == (
        "Campaign pilot is ready but not live: simulated raters vote on a live campaign, beside "
        "its people. Press Launch first."
    )
    assert page.is_enabled("#action-launch")  # the button it names is right there
    # The simulation page says it once, and the command in the same words.
    page.goto(f"{base}/admin/study/campaign/{campaign.pk}/simulate/")
    assert page.inner_text("#content").count("Press Launch first") == 1
    with pytest.raises(CommandError) as refused:
        call_command("simulate_raters", campaign.name)
    assert str(refused.value) == reason
    # Launch on the page, then the pilot runs.
    open_campaign(page, base, campaign)
    page.click("#action-launch")
    page.wait_for_selector("text=is live with 2 rater links")
    assert page.is_enabled("#action-simulate")
    page.fill("#simulate-raters", "4")
    page.click("#action-simulate")
    page.wait_for_selector("text=4 simulated raters (0 careless) added")


def test_a_closed_campaign_says_one_thing(live_campaign, researcher, live_server, page):
    """Finding 4: Close said "0 votes kept" while the report held the simulated votes, and then
    simulate, launch and preview gave three different reasons."""
    base = live_server.url
    votes = add_simulated_raters(live_campaign, 3, bad=0)
    assert votes == 27
    admin_login(page, base)
    open_campaign(page, base, live_campaign)
    page.click("#action-close")
    counted = "0 of 2 rater sessions completed by people; the report holds 27 votes, 27 of them "
    assert counted in page.inner_text("#closing")
    page.click("#confirm-close")
    page.wait_for_selector("ul.messagelist")
    assert (
        f"Pilot is closed: {counted}simulated (3 simulated raters). Its links now say the study "
        "has ended." in messages(page)
    )
    # The report holds what Close counted.
    page.goto(f"{base}/admin/study/campaign/{live_campaign.pk}/report/")
    assert "27 rating votes from 3 raters" in page.inner_text(".report-summary")
    open_campaign(page, base, live_campaign)
    closed = "Campaign pilot is closed: its votes are final. Clone it to run the same design again."
    assert enabled(page) == dict.fromkeys(ROW, False) | {"clone": True, "export": True}
    for action in ("launch", "preview", "simulate", "close"):
        assert why(page, action) == closed, action
    # The list action, the simulation page and the commands say the same.
    page.goto(f"{base}/admin/study/campaign/")
    page.check(f"input[name=_selected_action][value='{live_campaign.pk}']")
    page.select_option("select[name=action]", label="Launch (make live, create rater links)")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist")
    assert closed in messages(page)
    page.goto(f"{base}/admin/study/campaign/{live_campaign.pk}/simulate/")
    assert page.inner_text("#refused") == closed
    for command in ("launch", "simulate_raters", "close"):
        with pytest.raises(CommandError, match=closed):
            call_command(command, live_campaign.name)
    # Clone is the way on, from the same row.
    open_campaign(page, base, live_campaign)
    page.click("#action-clone")
    page.click("#confirm-clone")
    page.wait_for_selector("text=cloned as")
    assert Campaign.objects.get(name="pilot-copy").status == Campaign.DRAFT
    assert Rater.objects.filter(campaign__name="pilot-copy").count() == 0


def test_a_fixed_design_says_why_and_save_says_what_changed(
    live_campaign, researcher, live_server, page
):
    """Finding 5: after generation the design fields turned into plain text, and Save said
    "changed successfully" with no reason and no Clone hint."""
    base = live_server.url
    admin_login(page, base)
    open_campaign(page, base, live_campaign)
    note = page.locator(".design-note").first
    assert note.is_visible()
    assert "The design is fixed once images are generated (status: live)" in note.inner_text()
    assert "Clone the campaign" in note.inner_text()
    assert page.locator("select[name=kernel]").count() == 0  # read-only, as before
    page.fill("#id_description", "pilot with the fixed design")
    page.click("input[name=_continue]")
    page.wait_for_selector("ul.messagelist")
    said = messages(page)
    assert "changed successfully" not in said
    assert "The campaign pilot was saved: description changed." in said
    assert "The design is fixed once images are generated" in said
    live_campaign.refresh_from_db()
    assert live_campaign.description == "pilot with the fixed design"
    page.click("input[name=_continue]")
    page.wait_for_selector("ul.messagelist")
    assert "The campaign pilot was saved: nothing changed." in messages(page)
