"""The researcher's cockpit for the crowd (issue 12): preview, simulated raters from the admin,
session length, absolute links, the participant funnel and approval lists."""

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from study.models import Campaign, Rater, Trial, session_estimate
from study.reports import frames
from tests.conftest import get_ready

pytestmark = pytest.mark.django_db


def change_page(client, campaign):
    return client.get(reverse("admin:study_campaign_change", args=[campaign.pk])).content.decode()


def finish(rater, scores):
    for trial, score in zip(rater.trials.order_by("position"), scores, strict=False):
        trial.mark_shown()
        rater.cast_vote(trial.position, score)


def test_a_preview_walks_the_real_pages_with_a_banner_and_reaches_no_analysis(
    live_campaign, client, researcher, tmp_path
):
    client.force_login(researcher)
    response = client.post(reverse("admin:study_campaign_preview", args=[live_campaign.pk]))
    preview = Rater.objects.get(platform="preview")
    assert response["Location"] == preview.get_absolute_url()
    page = client.get(preview.get_absolute_url()).content.decode()
    assert 'id="preview-banner"' in page and "nothing you do here reaches the analysis" in page
    get_ready(client, preview)
    assert (
        client.post(
            f"/r/{preview.token}/vote/", {"position": 0, "score": 4}, HTTP_ACCEPT="application/json"
        ).json()["status"]
        == "stored"
    )
    person = live_campaign.raters.filter(platform="link").first()
    finish(person, [3] * 9)
    votes = frames.votes_frame(live_campaign)
    assert set(votes["rater"]) == {f"r{person.pk}"}  # the preview's vote is not data
    assert "preview" not in change_page(client, live_campaign).split('id="funnel"')[1][:50]


def test_a_ready_campaign_can_be_previewed_before_launch(
    make_campaign, client, researcher, eager_celery, django_capture_on_commit_callbacks
):
    from study.generation.queue import start_generation

    campaign = make_campaign()
    with django_capture_on_commit_callbacks(execute=True):
        start_generation(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    client.force_login(researcher)
    client.post(reverse("admin:study_campaign_preview", args=[campaign.pk]))
    preview = Rater.objects.get(platform="preview")
    get_ready(client, preview)
    assert "Image 1 of" in client.get(preview.get_absolute_url()).content.decode()
    # A person's link is not open before launch.
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY


def test_simulated_raters_from_the_admin_are_labelled_simulated(live_campaign, client, researcher):
    client.force_login(researcher)
    url = reverse("admin:study_campaign_simulate", args=[live_campaign.pk])
    assert "Add simulated raters" in client.get(url).content.decode()
    response = client.post(url, {"raters": 3, "bad": 1, "profile": "paper", "seed": 1})
    assert response.status_code == 302
    assert live_campaign.raters.filter(platform="simulated").count() == 3
    votes = frames.votes_frame(live_campaign)
    assert set(votes["rater_platform"]) == {"simulated"}
    refused = client.post(url, {"raters": 0, "bad": 0, "profile": "paper", "seed": 1})
    assert refused.status_code == 200 and "greater than or equal to 1" in refused.content.decode()


def test_the_session_length_is_estimated_and_said_in_the_consent_text(
    live_campaign, client, researcher
):
    minutes, trials, seconds, measured = session_estimate(live_campaign)
    assert trials == 9 and seconds == 6.0 and not measured and minutes == 1
    rater = live_campaign.raters.first()
    welcome = client.get(rater.get_absolute_url()).content.decode()
    assert "It takes about 1 minute;" in welcome and "20-30" not in welcome
    # Once people have voted (20 votes or more), their median viewing time replaces the guess.
    Rater.objects.create_with_trials(live_campaign)
    for r in live_campaign.raters.all():
        Trial.objects.filter(rater=r).update(server_ms=20000, score=3, answered_at=timezone.now())
    live_campaign.refresh_from_db()
    minutes, trials, seconds, measured = session_estimate(live_campaign)
    assert measured and seconds == 20.0 and minutes == 3
    client.force_login(researcher)
    assert "about 3 minutes" in change_page(client, live_campaign)


def test_links_are_absolute_with_copy_buttons(live_campaign, client, researcher):
    client.force_login(researcher)
    page = change_page(client, live_campaign)
    rater = live_campaign.raters.filter(platform="link").first()
    assert f'data-copy="http://testserver/r/{rater.token}/"' in page
    assert f'data-copy="http://testserver/join/{live_campaign.recruit_token}/"' in page


def test_the_funnel_counts_each_stage_and_session_time(live_campaign, client, researcher):
    now = timezone.now()
    first, second = live_campaign.raters.all()[:2]
    Campaign.objects.filter(pk=live_campaign.pk).update(open_recruitment=True)
    client.get(f"/join/{live_campaign.recruit_token}/?PROLIFIC_PID=P1")  # opened only
    get_ready(client, first)
    finish(first, [3, 4, 2, 5, 3, 1, 4, 2, 3])
    Rater.objects.filter(pk=first.pk).update(consented_at=now - timedelta(minutes=12))
    second.display_checks = [{"fits": False}]
    second.consented_at = second.opened_at = now - timedelta(hours=3)
    second.save()
    client.force_login(researcher)
    page = change_page(client, live_campaign)
    funnel = page.split('id="funnel"')[1].split("</table>")[0]
    for stage, n in (
        ("opened", 3),
        ("consented", 2),
        ("failed display check", 1),
        ("completed", 1),
        ("abandoned", 1),
    ):
        assert f"<th>{stage}</th><td>{n}</td>" in funnel, stage
    assert "Session time: median 12." in page


def test_approval_lists_follow_the_chosen_thresholds(live_campaign, client, researcher):
    Campaign.objects.filter(pk=live_campaign.pk).update(open_recruitment=True)
    # Three people, three computers (the open link takes one session per client).
    for n, pid in enumerate(("P-good", "P-bad")):
        person = Client(REMOTE_ADDR=f"10.0.2.{n + 1}")
        person.get(f"/join/{live_campaign.recruit_token}/?PROLIFIC_PID={pid}&SESSION_ID=s{pid}")
    Client(REMOTE_ADDR="10.0.2.9").get(
        f"/join/{live_campaign.recruit_token}/?workerId=W1&assignmentId=A1&hitId=H1"
        "&turkSubmitTo=https://www.mturk.com"
    )
    good = live_campaign.raters.get(participant_id="P-good")
    bad = live_campaign.raters.get(participant_id="P-bad")
    slugs = {
        t.pk: t.candidate.method.slug for t in Trial.objects.select_related("candidate__method")
    }
    for rater, hr, nearest in ((good, 5, 1), (bad, 1, 5)):
        for trial in rater.trials.order_by("position"):
            trial.mark_shown()
            score = {"hr": hr, "nearest": nearest}.get(slugs[trial.pk], 3)
            rater.cast_vote(trial.position, score)
    client.force_login(researcher)
    url = reverse("admin:study_campaign_approvals", args=[live_campaign.pk])
    query = {"platform": "prolific", "require_complete": "on", "max_gold_misses": 1,
             "reject_straightlining": "on", "min_median_seconds": 0}  # fmt: skip
    page = client.get(url, query).content.decode()
    assert "P-good</td><td>approve" in page and "P-bad</td><td>reject" in page
    assert "missed 6 of 6 check images" in page
    rows = list(
        csv.DictReader(io.StringIO(client.get(url, {**query, "download": "1"}).content.decode()))
    )
    assert {r["participant_id"]: r["decision"] for r in rows} == {
        "P-good": "approve",
        "P-bad": "reject",
    }
    mturk = client.get(url, {**query, "platform": "mturk", "download": "1"}).content.decode()
    rows = list(csv.DictReader(io.StringIO(mturk)))
    assert rows == [
        {"AssignmentId": "A1", "WorkerId": "W1", "Approve": "", "Reject": rows[0]["Reject"]}
    ]
    assert "did not finish the session" in rows[0]["Reject"]
    # A looser threshold approves the gold misser: the researcher decides, not srmos.
    looser = {**query, "max_gold_misses": 10}
    assert "P-bad</td><td>approve" in client.get(url, looser).content.decode()
    # Nothing changed on the sessions themselves.
    assert (
        not Rater.objects.exclude(platform_data__approved=None)
        .filter(platform_data__has_key="approved")
        .exists()
    )


def test_closing_counts_people_not_previews_or_simulated_sessions(live_campaign):
    from study.rating.simulated import add_simulated_raters

    add_simulated_raters(live_campaign, 3, bad=0)
    Rater.objects.create_with_trials(live_campaign, platform=Rater.PREVIEW)
    count = live_campaign.close()
    assert (count.sessions, count.completed, count.people_votes) == (2, 0, 0)
    # The report's votes are the simulated ones, and Close says so.
    assert (count.votes, count.simulated_votes, count.simulated_sessions) == (27, 27, 3)
