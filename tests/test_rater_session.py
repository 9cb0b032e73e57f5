"""The rater's session: consent, display check, calibration, QC, resume, crowd recruitment."""

import re

import pytest
from django.test import Client

from study.models import Campaign, Rater, Trial, session_quality, trial_order
from tests.conftest import generate_and_launch, get_ready

pytestmark = pytest.mark.django_db


@pytest.fixture
def launch(make_campaign, eager_celery, django_capture_on_commit_callbacks):
    def make(**fields):
        campaign = make_campaign()
        Campaign.objects.filter(pk=campaign.pk).update(**fields)
        campaign.refresh_from_db()
        return generate_and_launch(campaign, django_capture_on_commit_callbacks)

    return make


def answer_all(client, rater, score=3):
    while (trial := rater.current_trial()) is not None:
        client.post(f"/r/{rater.token}/vote/", {"position": trial.position, "score": score})


def test_it_asks_for_consent_first(launch, client):
    rater = launch().raters.first()
    page = client.get(f"/r/{rater.token}/")
    html = page.content.decode()
    assert "Welcome" in html and "1</th><td>Bad" in html and "5</th><td>Excellent" in html
    refused = client.post(f"/r/{rater.token}/consent/", {})
    assert refused.status_code == 400 and "tick the box" in refused.content.decode()
    # No vote is taken before consent.
    client.post(f"/r/{rater.token}/vote/", {"position": 0, "score": 3})
    assert not Trial.objects.answered().exists()
    client.post(f"/r/{rater.token}/consent/", {"consent": "yes"}, HTTP_USER_AGENT="TestBrowser/1.0")
    rater.refresh_from_db()
    assert rater.consented_at and rater.user_agent == "TestBrowser/1.0"


def test_a_window_too_small_is_warned_and_recorded(launch, client):
    rater = launch(display_policy="warn").raters.first()
    response = get_ready(client, rater, viewport=(40, 300), dpr=1.0)
    html = response.content.decode()
    assert "Your window is too small" in html and "Continue anyway" in html
    going_on = client.post(
        f"/r/{rater.token}/display/",
        {"viewport_width": 40, "viewport_height": 300, "dpr": 1, "go_on": "1"},
    )
    assert going_on.status_code == 302
    rater.refresh_from_db()
    first, second = rater.display_checks
    assert first["fits"] is False and first["viewport"] == [40, 300]
    assert second["went_on_anyway"] is True
    assert "Image 1 of" in client.get(f"/r/{rater.token}/").content.decode()


def test_a_refuse_policy_does_not_let_a_small_window_through(launch, client):
    rater = launch(display_policy="refuse").raters.first()
    html = get_ready(client, rater, viewport=(40, 300)).content.decode()
    assert "Your window is too small" in html and "Continue anyway" not in html
    client.post(
        f"/r/{rater.token}/display/",
        {"viewport_width": 40, "viewport_height": 300, "dpr": 1, "go_on": "1"},
    )
    assert "Display check" in client.get(f"/r/{rater.token}/").content.decode()
    # A high-density screen needs fewer CSS pixels: 64 image px fit in 32 CSS px at dpr 2.
    assert get_ready(client, rater, viewport=(40, 300), dpr=2.0).status_code == 302
    assert "Image 1 of" in client.get(f"/r/{rater.token}/").content.decode()


def test_calibration_shows_nn_as_1_and_hr_as_5_and_stores_no_votes(calibrated_campaign, client):
    campaign = calibrated_campaign
    assert campaign.candidates.filter(role="calibration").count() == 4
    rater = campaign.raters.first()
    # Calibration candidates are never rating trials.
    assert not rater.trials.filter(candidate__role="calibration").exists()
    get_ready(client, rater)
    html = client.get(f"/r/{rater.token}/").content.decode()
    figures = re.findall(
        r'<figure class="calibration-item".*?<figcaption class="anchor-label">(.*?)</figcaption>'
        r'.*?src="/r/[^/]+/c/([^".]+)\.png"',
        html,
        re.S,
    )
    slugs = dict(campaign.candidates.values_list("public_id", "method__slug"))
    labels = [(label, slugs[public_id]) for label, public_id in figures]
    # Each calibration image's nearest-neighbour version is labelled 1, its HR version 5.
    assert labels == [("1 - bad", "nearest"), ("5 - excellent", "hr")] * 2
    for _, public_id in figures:
        assert client.get(f"/r/{rater.token}/c/{public_id}.png").status_code == 200
    client.post(f"/r/{rater.token}/calibration/")
    assert "Image 1 of 9" in client.get(f"/r/{rater.token}/").content.decode()
    assert not Trial.objects.answered().exists()


def test_retests_gold_items_and_straight_lining_are_flagged(launch, client):
    rater = launch(retest_share=0.34).raters.first()
    trials = list(rater.trials.all())
    assert len(trials) == 9 + 3
    retests = [t for t in trials if t.kind == "retest"]
    assert len(retests) == 3 and all(t.repeat == 1 for t in retests)
    firsts = {t.candidate_id: t.position for t in trials if t.kind == "rating"}
    assert all(firsts[t.candidate_id] < t.position for t in retests)
    assert {t.expected for t in trials if t.candidate.method.slug == "hr"} == {">=4"}
    assert {t.expected for t in trials if t.candidate.method.slug == "nearest"} == {"<=2"}

    get_ready(client, rater)
    answer_all(client, rater, score=3)
    rater.refresh_from_db()
    qc = rater.qc
    assert (
        qc["n"] == 9 and qc["variance"] == 0 and qc["retest_pairs"] == 3 and qc["retest_mad"] == 0
    )
    assert qc["gold_items"] == sum(1 for t in trials if t.expected)
    assert qc["gold_misses"] == qc["gold_items"]  # 3 is neither >= 4 for HR nor <= 2 for NN
    assert "straight-lining" not in qc["flags"]  # fewer than 10 votes: not judged
    assert all("gold-miss" in t.flags for t in rater.trials.exclude(expected=""))
    assert Rater.objects.get(pk=rater.pk).completed_at is not None


def test_the_stored_order_is_reproducible_from_the_seeds(launch):
    campaign = launch()
    for rater in campaign.raters.all():
        pairs = list(campaign.candidates.filter(role="rating").values_list("pk", "image_id"))
        expected = trial_order(pairs, seed=f"{campaign.seed}:{rater.seed}")
        assert list(rater.trials.values_list("candidate_id", flat=True)) == expected
    orders = [list(r.trials.values_list("candidate_id", flat=True)) for r in campaign.raters.all()]
    assert orders[0] != orders[1]


def test_closing_the_browser_and_coming_back_resumes(launch, client):
    rater = launch().raters.first()
    get_ready(client, rater)
    for score in (5, 4, 3):
        client.post(
            f"/r/{rater.token}/vote/",
            {"position": rater.current_trial().position, "score": score},
            follow=True,  # the browser follows to the next trial's page
        )
    other_device = Client()
    assert "Display check" in other_device.get(f"/r/{rater.token}/").content.decode()
    get_ready(other_device, rater)
    assert "Image 4 of 9" in other_device.get(f"/r/{rater.token}/").content.decode()


def test_a_duration_is_stored_with_each_vote_and_fast_votes_flagged(launch, client):
    rater = launch(min_view_ms=1500).raters.first()
    get_ready(client, rater)
    client.get(f"/r/{rater.token}/")
    client.post(f"/r/{rater.token}/vote/", {"position": 0, "score": 4, "duration_ms": 200})
    trial = rater.trials.get(position=0)
    assert trial.duration_ms == 200 and "too-fast" in trial.flags and trial.shown_at is not None


def test_completion_shows_the_code_and_the_platform_link(launch, client):
    campaign = launch(
        open_recruitment=True,
        completion_url="https://app.prolific.com/submissions/complete?cc={code}",
    )
    url = f"/join/{campaign.recruit_token}/?PROLIFIC_PID=p123&STUDY_ID=s1&SESSION_ID=x9"
    response = client.get(url)
    rater = Rater.objects.get(participant_id="p123")
    assert response.url == f"/r/{rater.token}/"
    assert rater.platform == "prolific" and rater.platform_data == {
        "STUDY_ID": "s1",
        "SESSION_ID": "x9",
    }
    assert client.get(f"/r/{rater.token}/done/").status_code == 302  # no code before the end
    get_ready(client, rater)
    answer_all(client, rater, score=2)
    html = client.get(f"/r/{rater.token}/done/").content.decode()
    assert campaign.completion_code in html
    assert f"https://app.prolific.com/submissions/complete?cc={campaign.completion_code}" in html
    # The same participant again gets the same session, never a second one.
    assert client.get(url).url == f"/r/{rater.token}/"
    assert campaign.raters.filter(participant_id="p123").count() == 1


def test_mturk_preview_accepts_nothing_and_a_finished_hit_posts_back(launch, client):
    campaign = launch(open_recruitment=True)
    base = f"/join/{campaign.recruit_token}/"
    preview = client.get(base + "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=h1")
    assert "preview" in preview.content.decode().lower()
    assert not Rater.objects.exclude(participant_id="").exists()
    # MTurk frames the page: the join page may be framed and opens the study top-level.
    assert "X-Frame-Options" not in preview
    response = client.get(
        base + "?workerId=W1&assignmentId=A1&hitId=h1&turkSubmitTo=https://workersandbox.mturk.com"
    )
    rater = Rater.objects.get(participant_id="W1")
    assert rater.platform == "mturk" and "X-Frame-Options" not in response
    html = response.content.decode()
    assert f'href="/r/{rater.token}/" target="_blank"' in html
    get_ready(client, rater)
    answer_all(client, rater)
    html = client.get(f"/r/{rater.token}/done/").content.decode()
    assert 'action="https://workersandbox.mturk.com/mturk/externalSubmit"' in html
    assert 'name="assignmentId" value="A1"' in html


def test_a_participant_id_alone_does_not_open_someone_elses_session(launch, client):
    campaign = launch(open_recruitment=True)
    base = f"/join/{campaign.recruit_token}/"
    first = client.get(base + "?PROLIFIC_PID=alice&STUDY_ID=s1&SESSION_ID=one")
    rater = Rater.objects.get(participant_id="alice")
    assert first.url == f"/r/{rater.token}/"
    # The same browser comes back (cookie), or Prolific sends the same session id: fine.
    assert client.get(base + "?PROLIFIC_PID=alice").url == f"/r/{rater.token}/"
    assert Client().get(base + "?PROLIFIC_PID=alice&SESSION_ID=one").url == f"/r/{rater.token}/"
    # Somebody else who only knows the id is turned away, without the token.
    intruder = Client().get(base + "?PROLIFIC_PID=alice&SESSION_ID=guess")
    assert intruder.status_code == 403 and rater.token not in intruder.content.decode()
    assert campaign.raters.filter(participant_id="alice").count() == 1


def test_a_finished_participant_gets_the_code_after_the_close(launch, client):
    campaign = launch(open_recruitment=True)
    base = f"/join/{campaign.recruit_token}/?participant=bob"
    client.get(base)
    rater = Rater.objects.get(participant_id="bob")
    get_ready(client, rater)
    answer_all(client, rater)
    campaign.close()
    page = client.get(base, follow=True)
    assert campaign.completion_code in page.content.decode()


def test_straight_lining_and_a_small_display_are_flagged():
    votes = [(i, 3, "rating", "", 2000, "") for i in range(12)]
    checks = [{"fits": False, "went_on_anyway": True}]
    quality = session_quality(votes, min_variance=0.1, display_checks=checks)
    assert quality["variance"] == 0 and quality["n"] == 12
    assert quality["flags"] == ["straight-lining", "display-too-small"]
    varied = [(i, 1 + i % 5, "rating", "", 2000, "") for i in range(12)]
    assert session_quality(varied, min_variance=0.1)["flags"] == []


def test_mturk_submission_goes_only_to_mturk(launch, client):
    campaign = launch(open_recruitment=True)
    client.get(
        f"/join/{campaign.recruit_token}/?workerId=W2&assignmentId=A2&turkSubmitTo=https://evil.example"
    )
    rater = Rater.objects.get(participant_id="W2")
    get_ready(client, rater)
    answer_all(client, rater)
    assert "evil.example" not in client.get(f"/r/{rater.token}/done/").content.decode()


def test_open_link_refusals_are_friendly(launch, client):
    campaign = launch(open_recruitment=True, max_participants=1)
    base = f"/join/{campaign.recruit_token}/"
    missing = client.get(base)
    assert missing.status_code == 400 and "must carry" in missing.content.decode()
    assert client.get(base + "?participant=<script>").status_code == 400
    client.get(base + "?participant=first")
    # Another person, on another computer: the cap, not the one-session-per-client rule, says no.
    other = Client(REMOTE_ADDR="10.0.0.2")
    assert "This study is full" in other.get(base + "?participant=second").content.decode()
    assert client.get("/join/nope/").status_code == 404
    campaign.close()
    assert "This study has ended" in other.get(base + "?participant=third").content.decode()


def test_an_unlaunched_campaign_shows_a_friendly_page(make_campaign, client):
    campaign = make_campaign()
    campaign.open_recruitment = True
    campaign.save()
    page = client.get(f"/join/{campaign.recruit_token}/?participant=early")
    assert page.status_code == 200 and "has not started yet" in page.content.decode()


def test_the_admin_and_exports_need_staff_rights(live_campaign, client, django_user_model):
    export = f"/admin/study/campaign/{live_campaign.pk}/export/votes/"
    assert client.get(export).status_code == 302
    django_user_model.objects.create_user("visitor", password="pw-visitor-123")
    client.login(username="visitor", password="pw-visitor-123")
    assert client.get(export).status_code == 302
    assert client.get("/admin/study/rater/").status_code == 302


def test_the_researcher_sees_qc_flags_per_rater(live_campaign, client, researcher):
    rater = live_campaign.raters.first()
    rater_client = Client()
    get_ready(rater_client, rater)
    answer_all(rater_client, rater, score=1)
    client.force_login(researcher)
    html = client.get("/admin/study/rater/").content.decode()
    assert "gold-miss x3" in html  # the three HR images scored 1
    links = client.get(f"/admin/study/campaign/{live_campaign.pk}/export/links/").content.decode()
    assert links.count("http://testserver/r/") == live_campaign.raters.count()


def test_launching_again_adds_the_links_asked_for(launch):
    campaign = launch(rater_links=2)
    Campaign.objects.filter(pk=campaign.pk).update(rater_links=5)
    campaign.refresh_from_db()
    campaign.launch()
    assert campaign.raters.filter(platform="link").count() == 5
    campaign.launch()
    assert campaign.raters.filter(platform="link").count() == 5
