"""Jobs heal themselves (issue 23, findings 2-4): real Celery workers on a Redis of the test's
own are killed, and the Redis is stopped without persistence; the reconciler that the workers'
embedded beat runs queues again what was lost, with no one pressing Generate or Check again, and
every job is done exactly once.

Leases and intervals are seconds here (`tests.faults_procs.FAST_HEALING`); the production
defaults make each heal take about a minute (docs/deployment.md).
"""

import shutil
import time

import pytest
from django.utils import timezone

from study.generation import registering
from study.generation.progress import generation_report
from study.generation.queue import start_generation
from study.models import Campaign, Candidate, Method, ModelRegistration
from tests.conftest import ROOT, png_bytes, sample_image, worker_env, zip_upload
from tests.faults_procs import FAST_HEALING, fault_workers, own_redis, wait_for  # noqa: F401
from tests.test_worker import use_broker  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ESPCN = ROOT / "sr_models" / "checkpoints" / "espcn_x4.pt"


def fault_env(redis, media_root):
    env = worker_env(redis.url, media_root)
    env.update(FAST_HEALING)
    return env


def made_once(campaign, media_root):
    """Every candidate done by one settled attempt, one file each at its fixed path."""
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    assert set(campaign.candidates.values_list("status", flat=True)) == {Candidate.DONE}
    files = sorted(p.name for p in (media_root / "candidates" / str(campaign.pk)).iterdir())
    assert files == sorted(
        f"{pid}.png" for pid in campaign.candidates.values_list("public_id", flat=True)
    ), "one file per candidate, no orphans"


def ready(campaign):
    campaign.refresh_from_db()
    failed = list(campaign.candidates.filter(status=Candidate.FAILED).values_list("error"))
    assert not failed, failed
    return campaign.status == Campaign.READY


@pytest.mark.django_db(transaction=True)
def test_generation_resumes_by_itself_after_redis_restarts_empty(
    make_campaign,
    own_redis,  # noqa: F811
    use_broker,  # noqa: F811
    fault_workers,  # noqa: F811
    media_root,
):
    use_broker(own_redis.url, {"visibility_timeout": 3600})
    worker = fault_workers(fault_env(own_redis, media_root), "w", slow=1.0)
    campaign = make_campaign(methods=("nearest", "bicubic"))
    assert start_generation(campaign) == 6
    wait_for(lambda: campaign.candidates.filter(status=Candidate.DONE).exists(), 60, "a candidate")

    own_redis.stop()  # no persistence: the queued candidates' messages are gone
    lost = set(campaign.candidates.filter(status=Candidate.QUEUED).values_list("pk", flat=True))
    time.sleep(1)
    own_redis.start()
    assert lost, "the outage came too late to lose a message"

    wait_for(lambda: ready(campaign), 90, f"the campaign to finish: {campaign.progress()}")
    made_once(campaign, media_root)
    attempts = dict(campaign.candidates.values_list("pk", "attempts"))
    # Those whose message was lost were published again once, and made once.
    assert {attempts[pk] for pk in lost} == {1}
    # One running through the outage finished, or (its worker lost) was taken over once.
    assert set(attempts.values()) <= {1, 2}
    assert "reconciler queued again" in worker.log.read_text(), worker.tail()


@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_worker_s_candidate_is_taken_over_after_its_lease(
    make_campaign,
    own_redis,  # noqa: F811
    use_broker,  # noqa: F811
    fault_workers,  # noqa: F811
    media_root,
):
    use_broker(own_redis.url, {"visibility_timeout": 3600})
    env = fault_env(own_redis, media_root)
    doomed = fault_workers(env, "doomed", slow=3.0, beat=False, wait=False)
    # The second worker starts beside it, on a queue nothing is sent to, until the kill.
    survivor = fault_workers(env, "survivor", queues="standby", slow=0.2, wait=False)
    doomed.ready(), survivor.ready()
    campaign = make_campaign(methods=("nearest", "bicubic"))
    assert start_generation(campaign) == 6
    running = wait_for(
        lambda: campaign.candidates.filter(status=Candidate.RUNNING).first(), 60, "a running task"
    )
    doomed.kill()  # the whole worker: its unacked message waits an hour for redelivery

    survivor.consume("gpu"), survivor.consume("cpu")
    wait_for(lambda: ready(campaign), 90, f"the campaign to finish: {campaign.progress()}")
    made_once(campaign, media_root)
    running.refresh_from_db()
    assert running.attempts == 2, "the killed attempt was taken over once"
    others = campaign.candidates.exclude(pk=running.pk).values_list("attempts", flat=True)
    assert list(others) == [1] * 5


@pytest.mark.django_db(transaction=True)
def test_a_registration_whose_worker_is_killed_is_settled_by_another_within_a_lease(
    builtin_methods,
    own_redis,  # noqa: F811
    use_broker,  # noqa: F811
    fault_workers,  # noqa: F811
    media_root,
    tmp_path,
):
    use_broker(own_redis.url, {"visibility_timeout": 3600})
    env = fault_env(own_redis, media_root)
    doomed = fault_workers(env, "doomed", slow=30.0, beat=False, wait=False)
    survivor = fault_workers(env, "survivor", queues="standby", wait=False)
    doomed.ready(), survivor.ready()
    path = tmp_path / "mine.pt"
    shutil.copy(ESPCN, path)
    with path.open("rb") as f:
        registration = registering.register(f, path.name, slug="own-espcn")
    wait_for(
        lambda: ModelRegistration.objects.filter(
            pk=registration.pk, status=ModelRegistration.RUNNING
        ).exists(),
        60,
        "the check to start",
    )
    doomed.kill()

    survivor.consume("gpu"), survivor.consume("cpu")
    wait_for(
        lambda: ModelRegistration.objects.filter(
            pk=registration.pk, status=ModelRegistration.VALID
        ).exists(),
        90,  # not the 31 minutes of the task's time limit: a lease and the reconciler's turn
        "another worker to settle the registration",
    )
    registration.refresh_from_db()
    assert registration.attempts == 2
    assert Method.objects.filter(slug="own-espcn", registration=registration).count() == 1


@pytest.mark.django_db
def test_a_dead_worker_s_registration_is_queued_again_not_blamed(
    django_capture_on_commit_callbacks, admin_client
):
    now = timezone.now()
    stuck = ModelRegistration.objects.create(
        slug="stuck",
        file="models/stuck.pt",
        sha256="0" * 64,
        status=ModelRegistration.RUNNING,
        claim="dead-worker",
        attempts=1,
        started_at=now - timezone.timedelta(seconds=120),
        lease_expires=now - timezone.timedelta(seconds=30),
    )
    # Registering the name again re-queues the check instead of "is being validated already".
    with django_capture_on_commit_callbacks() as published:
        with pytest.raises(registering.RegistrationRefused, match="queued again for a worker"):
            registering.check_request("stuck", "auto", "")
    assert len(published) == 1
    stuck.refresh_from_db()
    assert (stuck.status, stuck.claim) == (ModelRegistration.QUEUED, "")

    # "Check again" in the admin says what it found: this one queued again, a live one left.
    live = ModelRegistration.objects.create(
        slug="live",
        file="models/live.pt",
        sha256="1" * 64,
        status=ModelRegistration.RUNNING,
        claim="live-worker",
        started_at=now,
        lease_expires=now + timezone.timedelta(seconds=60),
    )
    with django_capture_on_commit_callbacks() as published:
        response = admin_client.post(
            "/admin/study/modelregistration/",
            {"action": "check_again", "_selected_action": [stuck.pk, live.pk]},
            follow=True,
        )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "1 registration(s) queued again for a worker's check" in text
    assert "1 registration(s) being checked by a live worker" in text
    assert len(published) == 1
    with pytest.raises(registering.RegistrationRefused, match="being checked by a worker"):
        registering.check_request("live", "auto", "")


@pytest.mark.django_db(transaction=True)
def test_metrics_lost_in_an_outage_are_computed_and_the_campaign_waits_for_them(
    make_campaign,
    own_redis,  # noqa: F811
    use_broker,  # noqa: F811
    fault_workers,  # noqa: F811
    media_root,
):
    use_broker(own_redis.url, {"visibility_timeout": 3600})
    env = fault_env(own_redis, media_root)
    # A worker serving only the GPU queue at first: the metric tasks wait on the CPU queue...
    worker = fault_workers(env, "w", queues="gpu")
    campaign = make_campaign(methods=("espcn",))
    campaign.metrics = ["gmsd"]
    campaign.save()
    assert start_generation(campaign) == 3
    wait_for(lambda: campaign.progress()["done"] == 3, 90, "the candidates to be made")
    # ...where a Redis restart without persistence loses them.
    own_redis.stop()
    own_redis.start()
    use_broker(own_redis.url, {"visibility_timeout": 3600})  # the test's connections are gone

    campaign.update_generation_status()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.GENERATING, "not ready while its metrics are missing"
    waiting = generation_report(campaign).ready_text()
    assert "3 candidates still wait for gmsd" in waiting, waiting
    with pytest.raises(ValueError, match="3 candidates still wait for gmsd"):
        campaign.launch()

    worker.consume("cpu")  # ...and the reconciler, which runs there, finds them lost
    wait_for(lambda: ready(campaign), 90, "the metrics to be computed")
    for candidate in campaign.candidates.all():
        assert 0 <= candidate.metrics["gmsd"] < 0.5, candidate.metric_notes
    assert generation_report(campaign).ready_text() == ""


@pytest.mark.django_db
def test_a_stalled_generation_shows_no_eta_beside_the_stall(
    make_campaign, admin_client, monkeypatch
):
    monkeypatch.setattr("study.generation.tasks.enqueue_candidates", lambda rows: None)
    campaign = make_campaign(methods=("nearest", "bicubic"))
    start_generation(campaign)  # the messages are lost at once
    long_ago = timezone.now() - timezone.timedelta(minutes=12)
    first = campaign.candidates.order_by("pk").first()
    Candidate.objects.filter(pk=first.pk).update(
        status=Candidate.DONE, started_at=long_ago, finished_at=long_ago, seconds=1.0
    )
    Campaign.objects.filter(pk=campaign.pk).update(generation_queued_at=long_ago)
    html = admin_client.get(f"/admin/study/campaign/{campaign.pk}/change/").content.decode()
    assert 'id="stalled"' in html and "queues them again by itself" in html
    assert "remaining 5, ETA unknown while stalled" in html


@pytest.mark.django_db
def test_the_reconciler_republishes_lost_messages_once_and_leaves_a_busy_queue_alone(
    make_campaign, monkeypatch
):
    from study.generation import reconcile

    published, waiting = [], {"cpu": 5, "gpu": 0}
    monkeypatch.setattr("study.generation.tasks.enqueue_candidates", published.extend)
    monkeypatch.setattr(reconcile, "waiting_messages", lambda queue: waiting[queue])
    campaign = make_campaign(methods=("nearest", "bicubic"))
    start_generation(campaign)
    published.clear()
    assert not reconcile.reconcile(), "just queued: their messages are on their way"

    long_ago = timezone.now() - timezone.timedelta(minutes=5)
    Campaign.objects.filter(pk=campaign.pk).update(generation_queued_at=long_ago)
    assert not reconcile.reconcile(), "the CPU queue still holds messages: a busy worker's backlog"
    waiting["cpu"] = 0  # empty: the messages of the six queued candidates were lost
    assert reconcile.reconcile().candidates_republished == 6
    assert len(published) == 6
    assert not reconcile.reconcile(), "published again once, not at every run"

    # A running candidate whose lease ran out is queued again at once, its claim withdrawn.
    dead = campaign.candidates.first()
    Candidate.objects.filter(pk=dead.pk).update(
        status=Candidate.RUNNING, claim="dead", started_at=long_ago, lease_expires=long_ago
    )
    assert reconcile.reconcile().candidates_taken_over == 1
    dead.refresh_from_db()
    assert (dead.status, dead.claim, dead.lease_expires) == (Candidate.QUEUED, "", None)


@pytest.mark.django_db(transaction=True)
def test_an_import_whose_worker_is_killed_is_finished_by_another_within_a_lease(
    researcher,
    own_redis,  # noqa: F811
    use_broker,  # noqa: F811
    fault_workers,  # noqa: F811
    media_root,
):
    from study.datasets.jobs import start_import
    from study.models import Dataset, ImportJob

    use_broker(own_redis.url, {"visibility_timeout": 3600})
    env = fault_env(own_redis, media_root)
    doomed = fault_workers(env, "doomed", slow=30.0, beat=False, wait=False)
    survivor = fault_workers(env, "survivor", queues="standby", wait=False)
    doomed.ready(), survivor.ready()
    upload = zip_upload({f"p{i}.png": png_bytes(sample_image(i)) for i in range(3)})
    job = start_import(ImportJob.DATASET, upload, {"dataset": "photos"}, researcher)
    wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk, status=ImportJob.RUNNING).exists(),
        60,
        "the import to start",
    )
    doomed.kill()

    survivor.consume("cpu")
    wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk, status=ImportJob.DONE).exists(),
        90,  # a lease and the reconciler's turn, not the task's 30-minute time limit
        "another worker to finish the import",
    )
    job.refresh_from_db()
    assert job.attempts == 2
    assert Dataset.objects.get(name="photos").images.count() == 3


@pytest.mark.django_db
def test_the_reconciler_queues_a_lost_import_again(monkeypatch):
    from study.datasets import tasks
    from study.models import ImportJob

    published = []
    monkeypatch.setattr(tasks.run_import, "delay", published.append)
    monkeypatch.setattr(tasks, "waiting_messages", lambda queue: 0)
    job = ImportJob.objects.create(kind=ImportJob.DATASET, archive="imports/1.zip")
    assert tasks.reconcile_imports() == 0  # just queued
    ImportJob.objects.filter(pk=job.pk).update(
        queued_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    assert tasks.reconcile_imports() == 1 and published == [job.pk]
    assert tasks.reconcile_imports() == 0, "published again once, not at every run"
