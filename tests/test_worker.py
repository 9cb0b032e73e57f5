"""Real Celery worker processes generate a campaign: the embedded broker and Redis."""

import time

import pytest

from study.generation.queue import start_generation
from study.models import Campaign, Candidate
from tests.conftest import worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def use_broker():
    from config.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def use(url, options=None):
        from kombu import pools

        # kombu keeps one connection pool per broker URL for the whole process: drop them all,
        # or the next publish may pick a pool closed for another test.
        pools.reset()
        app.conf.broker_url = url
        app.conf.broker_transport_options = options or {}
        app._pool = None
        app.amqp._producer_pool = None

    yield use
    use(*saved)


def wait_until_ready(campaign, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        campaign.refresh_from_db()
        if campaign.status == Campaign.READY:
            return
        if campaign.candidates.filter(status=Candidate.FAILED).exists():
            errors = list(
                campaign.candidates.filter(status=Candidate.FAILED).values_list("error", flat=True)
            )
            pytest.fail(f"candidates failed: {errors}")
        time.sleep(0.3)
    pytest.fail(f"campaign not ready after {timeout} s: {campaign.progress()}")


def check_generated(campaign, media_root):
    assert campaign.progress()["done"] == campaign.candidates.count() == 9
    files = sorted(p.name for p in (media_root / "candidates" / str(campaign.pk)).iterdir())
    assert files == sorted(
        f"{pid}.png" for pid in campaign.candidates.values_list("public_id", flat=True)
    )
    assert all(a == 1 for a in campaign.candidates.values_list("attempts", flat=True))


def test_a_worker_on_the_embedded_broker_generates_a_campaign(
    make_campaign, start_worker, media_root, settings
):
    start_worker(worker_env(settings.CELERY_BROKER_URL, media_root))
    campaign = make_campaign()
    assert start_generation(campaign) == 9
    wait_until_ready(campaign)
    check_generated(campaign, media_root)


@pytest.mark.redis
def test_a_worker_on_redis_generates_a_campaign(
    make_campaign, start_worker, media_root, redis_url, use_broker
):
    use_broker(redis_url, {"visibility_timeout": 3600})
    worker = start_worker(worker_env(redis_url, media_root))
    campaign = make_campaign()
    start_generation(campaign)
    wait_until_ready(campaign)
    check_generated(campaign, media_root)
    assert "generate_candidate" in worker.log.read_text()
