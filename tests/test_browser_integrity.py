"""One input, one vote, on the image on screen: key presses and clicks at real speed, in Chromium.

A person who presses a key twice (a bounce, a double tap) 20 to 200 ms apart means one score.
Before this, the second press landed on the next image about 30 ms later: an image nobody saw.
"""

import statistics

import pytest

from study.models import VOTE_FLOOR_MS, Campaign, Trial
from tests.conftest import start_session, wait_for_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.slow]

GAPS_MS = (20, 40, 100, 200)


@pytest.fixture
def floored_campaign(live_campaign):
    """The live campaign with the default vote floor (the other tests vote without one)."""
    Campaign.objects.filter(pk=live_campaign.pk).update(vote_floor_ms=VOTE_FLOOR_MS)
    return live_campaign


def painted(page):
    """The position of the trial whose image the page has painted (None before the first)."""
    value = page.evaluate("() => document.body.dataset.painted")
    return None if value is None else int(value)


def wait_until_ready(page, number):
    """The trial `number` is painted and its buttons came alive (the floor has passed)."""
    wait_for_image(page, number)
    page.wait_for_function("n => document.body.dataset.painted === String(n - 1)", arg=number)
    page.wait_for_selector("#vote-form button[value='1']:enabled")


def votes(rater):
    return list(
        Trial.objects.answered()
        .filter(rater=rater)
        .order_by("position")
        .values_list("position", "score", "duration_ms")
    )


def test_a_double_key_press_at_any_gap_scores_only_the_image_on_screen(
    floored_campaign, live_server, page
):
    rater = floored_campaign.raters.first()
    start_session(page, live_server.url, rater)
    pressed_on = []
    for i, gap in enumerate(GAPS_MS):
        wait_until_ready(page, i + 1)
        pressed_on.append(painted(page))
        page.keyboard.press("3")
        page.wait_for_timeout(gap)
        page.keyboard.press("4")  # the same intent, pressed again: never a vote on image i + 2
    wait_until_ready(page, len(GAPS_MS) + 1)
    stored = votes(rater)
    assert [position for position, _, _ in stored] == pressed_on == list(range(len(GAPS_MS)))
    assert all(score == 3 for _, score, _ in stored), stored
    # Each vote was given on an image on screen for at least the floor.
    assert all(duration >= VOTE_FLOOR_MS for _, _, duration in stored), stored


def test_a_double_click_at_any_gap_scores_only_the_image_on_screen(
    floored_campaign, live_server, page
):
    rater = floored_campaign.raters.first()
    start_session(page, live_server.url, rater)
    for i, gap in enumerate(GAPS_MS):
        wait_until_ready(page, i + 1)
        button = page.locator("#vote-form button[value='2']")
        button.click()
        page.wait_for_timeout(gap)
        # force: a real pointer clicks wherever the button is, enabled or not.
        button.click(force=True)
    wait_until_ready(page, len(GAPS_MS) + 1)
    stored = votes(rater)
    assert [(position, score) for position, score, _ in stored] == [
        (i, 2) for i in range(len(GAPS_MS))
    ]


def test_keys_pressed_as_fast_as_a_person_can_leave_a_vote_per_painted_image(
    floored_campaign, live_server, page
):
    """A rater hammering a key every 20 ms or so: votes only on painted images,
    each at least the floor after its paint, never two on one image."""
    rater = floored_campaign.raters.first()
    start_session(page, live_server.url, rater)
    wait_until_ready(page, 1)
    for _ in range(60):
        page.keyboard.press("5")
        page.wait_for_timeout(20)
    page.wait_for_timeout(500)
    latencies = page.evaluate("() => window.srmosLatencies || []")
    stored = votes(rater)
    positions = [position for position, _, _ in stored]
    assert positions == list(range(len(positions))) and len(positions) >= 3
    assert all(duration >= VOTE_FLOOR_MS for _, _, duration in stored), stored
    if latencies:
        print(f"key press to next image painted: median {statistics.median(latencies):.1f} ms")


def test_a_vote_sent_faster_than_the_floor_is_refused_and_the_page_carries_on(
    floored_campaign, live_server, page
):
    """A tampered page (or one that lost its gate) posts at once: the server refuses it, the
    image stays, and the rater's real vote a moment later is stored."""
    rater = floored_campaign.raters.first()
    start_session(page, live_server.url, rater)
    wait_until_ready(page, 1)
    answer = page.evaluate(
        """async () => {
            const form = document.getElementById('vote-form');
            const data = new FormData(form);
            data.set('score', '1');
            const first = await fetch(form.action, {method: 'POST', body: data,
                                        headers: {Accept: 'application/json'}});
            const next = (await first.json()).next;
            data.set('position', next.position);
            const second = await fetch(form.action, {method: 'POST', body: data,
                                         headers: {Accept: 'application/json'}});
            return [second.status, await second.json()];
        }"""
    )
    status, body = answer
    assert status == 429 and body["too_fast"] and body["retry_in_ms"] > 0
    assert [position for position, _, _ in votes(rater)] == [0]


def test_the_buttons_come_alive_even_when_a_timer_fires_early(floored_campaign, live_server, page):
    """A timer may fire a fraction of a millisecond before its delay by performance.now()'s
    clock. The buttons used to be unlocked by one timer set to the floor: firing early, it found
    the image not yet seen long enough and nothing looked again, so a rater with a mouse was
    stuck on a page of disabled buttons (the double-click test's 15 s time-out). Here every
    timer fires 2 ms early; the buttons still come alive, image after image."""
    page.add_init_script(
        """(() => {
            const setTimeoutNative = window.setTimeout;
            window.setTimeout = (fn, ms, ...args) =>
                setTimeoutNative(fn, ms >= 50 ? ms - 2 : ms, ...args);
        })();"""
    )
    rater = floored_campaign.raters.first()
    start_session(page, live_server.url, rater)
    for i in range(3):
        wait_until_ready(page, i + 1)
        page.locator("#vote-form button[value='4']").click()
    wait_until_ready(page, 4)
    assert [(position, score) for position, score, _ in votes(rater)] == [(i, 4) for i in range(3)]
