import re

import pytest
from django.contrib.staticfiles import finders

from study.models import Method, Trial
from tests.conftest import get_ready

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
    candidate = rater.current_trial().candidate
    assert client.get("/r/not-a-token/").status_code == 404
    assert client.get("/r/not-a-token/done/").status_code == 404
    assert client.post("/r/not-a-token/vote/", {"position": 0, "score": 3}).status_code == 404
    assert client.get(f"/r/not-a-token/img/{candidate.public_id}").status_code == 404
    assert client.get(f"/r/{rater.token}/img/not-an-id").status_code == 404
    assert not Trial.objects.answered().exists()


def test_another_campaigns_rater_cannot_fetch_these_images(
    live_campaign, make_campaign, client, django_capture_on_commit_callbacks
):
    second = make_campaign(methods=("nearest",), name="second")
    with django_capture_on_commit_callbacks(execute=True):
        second.start_generation()
    second.refresh_from_db()
    second.launch()
    outsider = second.raters.first()
    candidate = live_campaign.candidates.first()
    assert client.get(f"/r/{outsider.token}/img/{candidate.public_id}").status_code == 404


def test_nothing_a_rater_sees_names_a_method(live_campaign, client):
    rater = live_campaign.raters.first()
    words = set()
    for method in Method.objects.all():
        words |= {method.slug.lower(), method.name.lower()}
    words |= {"nearest", "bicubic", "reference", "interpolation", "srgan", "srresnet"}
    static_texts = []
    seen = [client.get(f"/r/{rater.token}/")]
    seen += [client.post(f"/r/{rater.token}/consent/", {"consent": "yes"}, follow=True)]
    seen += [client.get(f"/r/{rater.token}/")]
    display = {"viewport_width": 1920, "viewport_height": 1080, "dpr": 1}
    seen += [client.post(f"/r/{rater.token}/display/", display, follow=True)]
    json_vote = client.post(
        f"/r/{rater.token}/vote/",
        {"position": rater.current_trial().position, "score": 4},
        HTTP_ACCEPT="application/json",
    )
    assert json_vote.status_code == 200 and json_vote.json()["status"] == "stored"
    seen.append(json_vote)
    while True:
        page = client.get(f"/r/{rater.token}/", follow=True)
        seen.append(page)
        html = page.content.decode()
        for src in re.findall(r'src="([^"]+)"', html):
            if src.startswith("/static/"):
                static_texts.append(finders.find(src.removeprefix("/static/")))
                continue
            image = client.get(src)
            assert image.status_code == 200
            seen.append(image)
        trial = rater.current_trial()
        if trial is None:
            break
        seen.append(vote(client, rater, 3))
    assert static_texts, "the rater page loads its script"
    for path in set(static_texts):
        text = open(path).read().lower()
        assert not any(re.search(rf"\b{re.escape(w)}\b", text) for w in words), path
    for response in seen:
        text = response.content.decode("latin-1").lower()
        headers = " ".join(f"{k}: {v}" for k, v in response.items()).lower()
        for word in words:
            assert not re.search(rf"\b{re.escape(word)}\b", text), (word, response)
            assert word not in headers, (word, headers)


def test_a_campaign_not_live_shows_a_friendly_page(live_campaign, rater, client):
    live_campaign.close()
    page = client.get(f"/r/{rater.token}/")
    assert page.status_code == 200 and "This study has ended" in page.content.decode()
    assert vote(client, rater, 3, 0).status_code == 409
