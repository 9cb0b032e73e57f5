"""The researcher runs generation from the campaign's admin page, also for 1,000+ candidates."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from study.generation.queue import start_generation
from study.models import Campaign, Candidate, Dataset, Method, SourceImage

pytestmark = pytest.mark.django_db


@pytest.fixture
def big_campaign(builtin_methods):
    """138 images x 8 built-in methods = 1,104 candidates (rows only: no pixels needed)."""
    dataset = Dataset.objects.create(name="big")
    SourceImage.objects.bulk_create(
        [
            SourceImage(
                dataset=dataset,
                name=f"im{i:03}",
                original_name=f"im{i:03}.png",
                file=f"datasets/big/im{i:03}.png",
                width=64,
                height=48,
                sha256=f"{i:064}",
            )
            for i in range(138)
        ]
    )
    campaign = Campaign.objects.create(name="big")
    campaign.datasets.set([dataset])
    campaign.methods.set(Method.objects.all())
    return campaign


def test_it_starts_1104_candidates_in_a_bounded_number_of_queries(
    big_campaign, django_capture_on_commit_callbacks, monkeypatch
):
    from config.celery import app
    from study.generation import tasks

    def queue_of(task, args, kwargs):
        return app.amqp.router.route({}, task.name, args, kwargs)["queue"].name

    chunks, sent = [], []
    monkeypatch.setattr(
        tasks.publish_candidates,
        "apply_async",
        lambda args, kwargs: chunks.append(
            (args[0], queue_of(tasks.publish_candidates, args, kwargs))
        ),
    )
    monkeypatch.setattr(
        tasks.generate_candidate,
        "apply_async",
        lambda args, kwargs: sent.append(
            (args[0], queue_of(tasks.generate_candidate, args, kwargs))
        ),
    )
    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=True):
            assert start_generation(big_campaign) == 1104
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    # One INSERT on PostgreSQL; SQLite's 999-parameter limit splits it into batches of ~49.
    assert len(inserts) <= 1104 // 40
    assert len(queries) - len(inserts) <= 15
    # The request itself sends five messages; a worker publishes the 1,104 tasks.
    assert len(chunks) == 5 and not sent
    assert {queue for _, queue in chunks} == {"cpu"}
    for chunk, _ in chunks:
        tasks.publish_candidates(chunk)
    assert len(sent) == 1104 and len({pk for pk, _ in sent}) == 1104
    network = set(
        Candidate.objects.filter(method__kind=Method.NETWORK).values_list("pk", flat=True)
    )
    assert {pk for pk, q in sent if q == "gpu"} == network
    assert {q for pk, q in sent if pk not in network} == {"cpu"}


def test_the_change_page_stays_cheap_with_1104_candidates(
    big_campaign, client, researcher, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr("study.generation.tasks.enqueue_candidates", lambda rows: None)
    start_generation(big_campaign)
    now = timezone.now()
    done = list(big_campaign.candidates.order_by("pk").values_list("pk", flat=True)[:600])
    Candidate.objects.filter(pk__in=done).update(
        status=Candidate.DONE, started_at=now - timedelta(seconds=60), finished_at=now, seconds=0.5
    )
    failed = list(big_campaign.candidates.filter(status="queued").values_list("pk", flat=True)[:30])
    Candidate.objects.filter(pk__in=failed).update(
        status=Candidate.FAILED, error="RuntimeError: CUDA out of memory\n\ntrace"
    )
    client.force_login(researcher)
    url = reverse("admin:study_campaign_change", args=[big_campaign.pk])
    with django_assert_max_num_queries(30):
        response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<th>done</th><td>600</td>" in html and "<th>failed</th><td>30</td>" in html
    assert "RuntimeError: CUDA out of memory" in html
    assert 'id="method-times"' in html and "0.5 s" in html
    # The design is frozen once candidates exist: the LR source shows, read-only.
    assert 'name="lr_source"' not in html and "LR: HR degraded x4 with matlab-bicubic" in html
    # 474 left at 600 per minute: about 47 s (more as the test itself takes time).
    assert re.search(r"remaining 474, ETA [45]\d s", html)
    with django_assert_max_num_queries(30):
        assert client.get(reverse("admin:study_campaign_changelist")).status_code == 200


def test_the_buttons_generate_retry_and_cancel(
    make_campaign, client, researcher, eager_celery, django_capture_on_commit_callbacks
):
    campaign = make_campaign(methods=("nearest",))
    client.force_login(researcher)

    def press(action):
        url = reverse("admin:study_campaign_generation", args=[campaign.pk, action])
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url)
        assert response.status_code == 302
        campaign.refresh_from_db()

    press("generate")
    assert campaign.status == Campaign.READY and campaign.progress()["done"] == 3
    campaign.candidates.filter(image__name="img0").update(status=Candidate.FAILED, error="boom")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.GENERATING)
    press("retry")
    assert campaign.status == Campaign.READY and campaign.progress()["failed"] == 0
    assert (
        client.get(
            reverse("admin:study_campaign_generation", args=[campaign.pk, "cancel"])
        ).status_code
        == 405
    )


def test_the_cancel_action_withdraws_queued_candidates(
    make_campaign, client, researcher, monkeypatch
):
    monkeypatch.setattr("study.generation.tasks.enqueue_candidates", lambda rows: None)
    campaign = make_campaign(methods=("nearest", "bicubic"))
    start_generation(campaign)
    client.force_login(researcher)
    response = client.post(
        reverse("admin:study_campaign_changelist"),
        {"action": "cancel_generation", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "6 queued candidates withdrawn" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.DRAFT and campaign.progress()["cancelled"] == 6


def test_an_outsider_cannot_press_the_buttons(make_campaign, client, django_user_model):
    campaign = make_campaign(methods=("nearest",))
    outsider = django_user_model.objects.create_user("outsider", password="pw-outsider-1")
    client.force_login(outsider)
    url = reverse("admin:study_campaign_generation", args=[campaign.pk, "generate"])
    response = client.post(url)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not campaign.candidates.exists()


def test_staff_who_may_only_view_the_campaign_get_404_from_the_buttons(
    make_campaign, client, django_user_model
):
    from django.contrib.auth.models import Permission

    campaign = make_campaign(methods=("nearest",))
    clerk = django_user_model.objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
    client.force_login(clerk)
    url = reverse("admin:study_campaign_generation", args=[campaign.pk, "generate"])
    viewer = reverse("admin:study_campaign_viewer", args=[campaign.pk])
    assert client.post(url).status_code == 404 and client.get(viewer).status_code == 404
    clerk.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    assert client.post(url).status_code == 404 and client.get(viewer).status_code == 200
    assert not campaign.candidates.exists()


def test_the_page_says_when_generation_has_stalled(big_campaign, client, researcher, monkeypatch):
    monkeypatch.setattr("study.generation.tasks.enqueue_candidates", lambda rows: None)
    start_generation(big_campaign)
    client.force_login(researcher)
    url = reverse("admin:study_campaign_change", args=[big_campaign.pk])

    def stall():
        html = client.get(url).content.decode()
        found = re.search(r'<p class="errornote" id="stalled">(.*?)</p>', html)
        return found and found.group(1)

    assert stall() is None  # just queued
    now = timezone.now()
    Campaign.objects.filter(pk=big_campaign.pk).update(
        generation_queued_at=now - timedelta(minutes=10)
    )
    # No worker has taken anything in ten minutes: the most common stall.
    assert stall().startswith("No candidate has been taken for 10 min while 1104 are queued.")
    assert "press Generate" in stall()
    first, second = big_campaign.candidates.order_by("pk").values_list("pk", flat=True)[:2]
    Candidate.objects.filter(pk=first).update(
        status=Candidate.RUNNING,
        started_at=now - timedelta(minutes=9),
        lease_expires=now + timedelta(seconds=30),
    )
    assert stall() is None  # a worker holds a live lease on a long batch
    Candidate.objects.filter(pk=first).update(
        status=Candidate.DONE, finished_at=now - timedelta(minutes=8)
    )
    Candidate.objects.filter(pk=second).update(
        status=Candidate.RUNNING,
        started_at=now - timedelta(minutes=7),
        lease_expires=now - timedelta(minutes=6),
    )
    message = stall()
    assert message.startswith("1 candidate(s) lost their worker (it stopped mid-task); ")
    assert "no candidate has been taken for 7 min while 1102 are queued" in message
