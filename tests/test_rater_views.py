import re
import struct

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from study.models import Campaign, Method, Rater, Trial
from tests.conftest import generate_and_launch, get_ready

pytestmark = pytest.mark.django_db


def vote(client, rater, score, position=None):
    if position is None:
        position = rater.current_trial().position
    return client.post(f"/r/{rater.token}/vote/", {"position": position, "score": score})


@pytest.fixture
def rater(live_campaign, client):
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    rater.refresh_from_db()
    return rater


def test_it_walks_a_session_to_the_thank_you_page(rater, client):
    total = rater.trials.count()
    for i in range(total):
        page = client.get(f"/r/{rater.token}/")
        assert page.status_code == 200
        assert f"Image {i + 1} of {total}" in page.content.decode()
        assert vote(client, rater, 1 + i % 5).status_code == 302
    done = client.get(f"/r/{rater.token}/", follow=True)
    assert "Thank you" in done.content.decode()
    rater.refresh_from_db()
    assert rater.completed_at is not None
    assert list(rater.trials.values_list("score", flat=True)) == [1 + i % 5 for i in range(total)]


def test_it_refuses_bad_scores_and_stores_nothing(rater, client):
    for bad in ["0", "6", "abc", "", "3.5"]:
        response = vote(client, rater, bad)
        assert response.status_code == 400
        assert "whole number from 1 (bad) to 5 (excellent)" in response.content.decode() or (
            "Choose a score" in response.content.decode()
        )
    assert not Trial.objects.answered().exists()


def test_a_resent_vote_is_stored_once(rater, client):
    first = rater.current_trial()
    vote(client, rater, 4, first.position)
    vote(client, rater, 2, first.position)
    first.refresh_from_db()
    assert first.score == 4
    assert rater.trials.answered().count() == 1


def test_a_vote_for_a_later_trial_is_refused(rater, client):
    response = vote(client, rater, 3, position=2)
    assert response.status_code == 409
    assert not Trial.objects.answered().exists()


def test_an_outsider_gets_404(live_campaign, client):
    rater = live_campaign.raters.first()
    assert client.get("/r/not-a-token/").status_code == 404
    assert client.get("/r/not-a-token/done/").status_code == 404
    assert client.post("/r/not-a-token/vote/", {"position": 0, "score": 3}).status_code == 404
    assert client.get("/r/not-a-token/t/0.png").status_code == 404
    assert client.get(f"/r/{rater.token}/t/999.png").status_code == 404
    assert client.get(f"/r/{rater.token}/c/not-an-id.png").status_code == 404
    assert not Trial.objects.answered().exists()


def test_another_campaigns_rater_cannot_fetch_these_images(
    calibrated_campaign, make_campaign, client, django_capture_on_commit_callbacks
):
    second = generate_and_launch(
        make_campaign(methods=("nearest",), name="second"), django_capture_on_commit_callbacks
    )
    outsider = second.raters.first()
    insider = calibrated_campaign.raters.first()
    get_ready(client, insider)  # calibration images are served while the session is there
    for candidate, _ in calibrated_campaign.calibration_trials():
        assert client.get(f"/r/{insider.token}/c/{candidate.public_id}.png").status_code == 200
        assert client.get(f"/r/{outsider.token}/c/{candidate.public_id}.png").status_code == 404
    # A rated candidate is never served by its public id, only as a trial of one's own.
    rated = calibrated_campaign.candidates.filter(role="rating").first()
    assert client.get(f"/r/{outsider.token}/c/{rated.public_id}.png").status_code == 404


def test_csrf_protects_every_form(live_campaign):
    rater = live_campaign.raters.first()
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(f"/r/{rater.token}/consent/", {"consent": "yes"}).status_code == 403
    assert strict.post(f"/r/{rater.token}/vote/", {"position": 0, "score": 3}).status_code == 403
    assert strict.post(f"/r/{rater.token}/display/", {"viewport_width": 9}).status_code == 403
    rater.refresh_from_db()
    assert rater.consented_at is None and not Trial.objects.answered().exists()


# paDd: the random padding that serves every version of an image at one length
# (study.rating.padding): random bytes, no text.
PNG_CHUNKS_ALLOWED = {b"IHDR", b"IDAT", b"IEND", b"sRGB", b"gAMA", b"pHYs", b"paDd"}


def png_chunks(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at : at + 4])[0]
        chunks.append(data[at + 4 : at + 8])
        at += 12 + length
    return chunks


def test_nothing_a_rater_sees_names_a_method(calibrated_campaign, client):
    campaign = calibrated_campaign
    Campaign.objects.filter(pk=campaign.pk).update(open_recruitment=True, retest_share=0.3)
    campaign.refresh_from_db()
    rater = Rater.objects.create_with_trials(campaign)  # with retest showings
    words = set()
    for method in Method.objects.all():
        words |= {method.slug.lower(), method.name.lower()}
    words |= {
        "nearest",
        "bicubic",
        "reference",
        "interpolation",
        "srgan",
        "srresnet",
        "retest",
        "gold",
    }
    token = rater.token
    join = f"/join/{campaign.recruit_token}/"
    images = []

    def seen(response):
        # A page's images are fetched as the browser does, while the page is the current step.
        for src in re.findall(r'src="(/r/[^"]+)"', response.content.decode()):
            images.append(client.get(src))
        return response

    pages = [
        seen(client.get(f"/r/{token}/")),
        seen(client.post(f"/r/{token}/consent/", {"consent": "yes"}, follow=True)),
        seen(client.get(f"/r/{token}/")),
        seen(
            client.post(
                f"/r/{token}/display/", {"viewport_width": 30, "viewport_height": 30, "dpr": 1}
            )
        ),
        seen(
            client.post(
                f"/r/{token}/display/",
                {"viewport_width": 1920, "viewport_height": 1080, "dpr": 1},
                follow=True,
            )
        ),
        seen(client.get(join + "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE")),
        seen(client.get(join)),
        seen(client.get(join + "?workerId=W9&assignmentId=A9&turkSubmitTo=https://www.mturk.com")),
        seen(client.post(f"/r/{token}/vote/", {"position": 0, "score": 9})),  # 400
        seen(client.post(f"/r/{token}/vote/", {"position": 5, "score": 3})),  # 409
        seen(
            client.post(
                f"/r/{token}/vote/", {"position": 5, "score": 3}, HTTP_ACCEPT="application/json"
            )
        ),
        seen(client.post(f"/r/{token}/calibration/", follow=True)),
    ]
    while (trial := rater.current_trial()) is not None:
        response = client.post(
            f"/r/{token}/vote/",
            {"position": trial.position, "score": 3},
            HTTP_ACCEPT="application/json",
        )
        pages.append(response)
        if response.json()["next"]:
            images.append(client.get(response.json()["next"]["src"]))
    pages.append(client.get(f"/r/{token}/", follow=True))
    assert rater.trials.filter(kind="retest").count() == 3
    assert len(images) > rater.n_trials

    scripts = {finders.find("study/session.js"), finders.find("study/rater.css")}
    texts = [open(path).read() for path in scripts]
    texts += [p.content.decode() for p in pages]
    for text in texts:
        for word in words:
            assert not re.search(rf"\b{re.escape(word)}\b", text.lower()), word
    for response in pages + images:
        # The rater's own random token may spell "hr" by chance: it is not a method's name.
        headers = " ".join(f"{k}: {v}" for k, v in response.items()).lower()
        headers = headers.replace(token.lower(), "<token>")
        assert not any(word in headers for word in words), headers
    for image in images:
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        assert set(png_chunks(image.content)) <= PNG_CHUNKS_ALLOWED  # no text, no metadata


def test_a_campaign_not_live_shows_a_friendly_page(live_campaign, rater, client):
    live_campaign.close()
    page = client.get(f"/r/{rater.token}/")
    assert page.status_code == 200 and "This study has ended" in page.content.decode()
    assert vote(client, rater, 3, 0).status_code == 409


@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_one_vote_store_it_once(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    campaign = generate_and_launch(make_campaign(), django_capture_on_commit_callbacks)
    rater = campaign.raters.first()
    browser = Client()
    get_ready(browser, rater)

    def post(score):
        try:
            copy = Client()
            copy.cookies = browser.cookies  # the same browser resending, as its retries do
            response = copy.post(
                f"/r/{rater.token}/vote/",
                {"position": 0, "score": score},
                HTTP_ACCEPT="application/json",
            )
            return response.status_code, response.json().get("status")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(post, [1, 2, 3, 4, 5, 1]))
    assert all(code == 200 for code, _ in results), results
    assert sorted(status for _, status in results) == ["duplicate"] * 5 + ["stored"]
    assert rater.trials.answered().count() == 1


def capped_open_campaign(make_campaign, capture, cap):
    campaign = generate_and_launch(make_campaign(), capture)
    Campaign.objects.filter(pk=campaign.pk).update(open_recruitment=True, max_participants=cap)
    return campaign


def join_at_once(campaign, participants):
    """Each participant id opens the open link at the same moment; "full" or the status code."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def join(participant):
        try:
            # Eight people on eight computers.
            person = Client(REMOTE_ADDR=f"10.0.1.{participants.index(participant) + 1}")
            page = person.get(f"/join/{campaign.recruit_token}/?participant={participant}")
            return "full" if "This study is full" in page.content.decode() else page.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(participants)) as pool:
        return list(pool.map(join, participants))


@pytest.mark.django_db(transaction=True)
def test_simultaneous_joins_never_overfill_the_cap(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    campaign = capped_open_campaign(make_campaign, django_capture_on_commit_callbacks, 3)
    results = join_at_once(campaign, [f"p{i}" for i in range(8)])
    assert sorted(results, key=str) == [302, 302, 302] + ["full"] * 5, results
    assert campaign.raters.exclude(participant_id="").count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_participant_racing_themself_for_the_last_place_gets_it(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    """A double click on the link: both requests for one id, one place left."""
    campaign = capped_open_campaign(make_campaign, django_capture_on_commit_callbacks, 1)
    results = join_at_once(campaign, ["twice"] * 4)
    # Never "full": the place is theirs. A request that arrives after the session exists, with
    # no cookie yet, is refused as a takeover (403) as it would be without the race.
    assert "full" not in results and 302 in results and set(results) <= {302, 403}, results
    assert campaign.raters.exclude(participant_id="").count() == 1
