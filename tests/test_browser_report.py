"""The live report as a researcher reads it, in headless Chromium: new votes appear in place,
without a reload and without losing the scroll position."""

import threading

import pytest
from django.core.management import call_command

from study.reports import live
from tests.conftest import admin_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]


def simulate(campaign, raters, seed):
    call_command(
        "simulate_raters",
        campaign.name,
        *("--raters", str(raters), "--bad", "1", "--seed", str(seed)),
        "--mix-with-real-votes",
    )


def summary(page):
    return page.inner_text(".report-summary")


def test_new_votes_appear_in_place_keeping_the_scroll_position(
    live_campaign, researcher, live_server, page, settings, monkeypatch
):
    base = live_server.url
    simulate(live_campaign, raters=4, seed=1)
    admin_login(page, base)
    page.goto(f"{base}/admin/study/campaign/{live_campaign.pk}/report/")
    assert "36 rating votes from 4 raters" in summary(page)
    assert page.get_attribute("#report", "data-live") == "yes"
    # The first column stays put when a wide table scrolls sideways; flags are in view.
    raters = page.locator("table[data-file='raters.csv']")
    flags = raters.locator("th").nth(1)
    assert flags.text_content() == "flags"
    box = page.locator(".scroll", has=raters).bounding_box()
    assert flags.bounding_box()["x"] + flags.bounding_box()["width"] <= box["x"] + box["width"]
    assert raters.locator("td").first.evaluate("td => getComputedStyle(td).position") == "sticky"
    raters.scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, 200)")
    page.evaluate("() => { window.sameDocument = true; }")
    y = page.evaluate("() => window.scrollY")
    assert y > 0
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    old_version = page.get_attribute("#report", "data-version")

    # The worker is busy: the report is recomputed in the background (held until released
    # below), and meanwhile the page shows the MOS of every vote above the last report.
    settings.SRMOS_REPORT_BUDGET_S = 0
    release = threading.Event()
    in_thread = live._in_thread

    def slow_worker(campaign_id):
        release.wait(60)
        in_thread(campaign_id)

    monkeypatch.setattr(live, "_in_thread", slow_worker)
    simulate(live_campaign, raters=3, seed=2)
    assert page.evaluate("() => window.srmosReport.refresh()") is True
    assert "now, 63 votes" in page.inner_text("#mos-now")
    assert page.locator("#mos-now-table tbody tr").count() == live_campaign.methods.count()
    assert "36 rating votes from 4 raters" in summary(page)
    assert "recomputing" in page.inner_text("#report-freshness")
    assert page.evaluate("() => window.scrollY") == y
    screenshot(page, "report-live-now")

    release.set()  # the report arrives by the page's own poll
    page.wait_for_function(
        "() => document.querySelector('.report-summary').innerText"
        ".includes('63 rating votes from 7 raters')",
        timeout=60_000,
    )
    assert page.locator("#mos-now").count() == 0
    assert page.get_attribute("#report", "data-version") != old_version
    assert page.evaluate("() => window.scrollY") == y
    assert page.evaluate("() => window.sameDocument") is True and navigations == []
    assert page.locator("table[data-file='raters.csv'] tbody tr").count() == 7
    screenshot(page, "report-live")
    # The figures follow the tables (stored first) by the page's poll too.
    page.wait_for_function(
        "() => !document.querySelector('#figures-behind')"
        " && !document.querySelector('#report-freshness').innerText.includes('redrawn')",
        timeout=60_000,
    )
    # Nothing new: the poll leaves the page alone.
    assert page.evaluate("() => window.srmosReport.refresh()") is False
    assert page.evaluate("() => window.scrollY") == y


def test_the_page_stops_polling_once_the_campaign_is_closed(
    live_campaign, researcher, live_server, page
):
    base = live_server.url
    simulate(live_campaign, raters=3, seed=3)
    admin_login(page, base)
    page.goto(f"{base}/admin/study/campaign/{live_campaign.pk}/report/")
    live_campaign.close()
    page.evaluate("() => window.srmosReport.refresh()")
    assert "no longer live" in page.inner_text("#report-status")


def test_figures_behind_the_tables_say_so_until_the_poll_brings_them(
    live_campaign, researcher, live_server, page, monkeypatch
):
    """The worker stores the tables first: while the figures are older, the page says by how
    many votes, above the previous figures, and its poll brings the new ones."""
    from study.models import ReportCache

    base = live_server.url
    simulate(live_campaign, raters=4, seed=4)
    admin_login(page, base)
    page.goto(f"{base}/admin/study/campaign/{live_campaign.pk}/report/")
    assert "36 rating votes from 4 raters" in summary(page)
    assert page.locator("#report-figures img").count() >= 2
    # As between the worker's two steps: the tables of 36 votes, the figures of 27.
    compute_here = live._compute_here
    monkeypatch.setattr(live, "_compute_here", lambda *args: None)
    ReportCache.objects.filter(pk=live_campaign.pk).update(
        figures_version="older", figures_n_votes=27
    )
    assert page.evaluate("() => window.srmosReport.refresh()") is True
    note = page.inner_text("#figures-behind")
    assert "These figures are as of 27 votes, the tables above as of 36" in note
    assert "the figures, as of 27, are being redrawn" in page.inner_text("#report-freshness")
    assert page.locator("#report-figures img").count() >= 2  # the last figures stay meanwhile
    assert "36 rating votes from 4 raters" in summary(page)
    screenshot(page, "report-figures-behind")
    # The figures are drawn (here, by the request, as without a worker): the page's own poll,
    # every 2 s while anything is being computed, brings them.
    monkeypatch.setattr(live, "_compute_here", compute_here)
    page.wait_for_function(
        "() => !document.querySelector('#figures-behind')"
        " && !document.querySelector('#report-freshness').innerText.includes('redrawn')",
        timeout=30_000,
    )
    assert "redrawn" not in page.inner_text("#report-freshness")
    assert page.locator("#report-figures img").count() >= 2
    row = ReportCache.objects.get(pk=live_campaign.pk)
    assert row.figures_version == row.version and row.figures_n_votes == 36
