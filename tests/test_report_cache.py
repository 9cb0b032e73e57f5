"""The live report from its cache: a worker computes it when votes arrive, a page request never
waits for the analysis beyond its budget (it shows the last report, or "computing", and polls),
and a burst of votes costs one recomputation, not one per vote."""

import time

import pytest
from django.core.management import call_command

from study.generation.queue import start_generation
from study.models import Campaign, ReportCache
from tests import conftest
from tests.conftest import worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def celery_app():
    from config.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager)

    def use(url=None, options=None, eager=False):
        from kombu import pools

        pools.reset()  # kombu keeps a pool per broker URL: the next publish must use this one
        if url:
            app.conf.broker_url = url
            app.conf.broker_transport_options = options or {}
        app.conf.task_always_eager = eager
        app._pool = None
        app.amqp._producer_pool = None

    yield use
    use(*saved[:2], eager=saved[2])


@pytest.fixture
def campaign(make_campaign, celery_app):
    """A launched campaign generated in-process (eager), with 6 simulated raters' votes."""
    celery_app(eager=True)
    campaign = make_campaign()
    start_generation(campaign)  # no transaction here: its on-commit publish runs at once
    campaign.refresh_from_db()
    campaign.launch()
    simulate(campaign, raters=6, seed=1)
    return campaign


def simulate(campaign, raters, seed, hook=True):
    call_command(
        "simulate_raters",
        campaign.name,
        *("--raters", str(raters), "--bad", "1", "--seed", str(seed)),
        "--mix-with-real-votes",
    )
    if hook:  # what the vote path does after storing votes (Rater.cast_vote / record_votes)
        ReportCache.objects.votes_arrived(campaign.pk)


def fragment(client, campaign, **query):
    t0 = time.perf_counter()
    response = client.get(f"/admin/study/campaign/{campaign.pk}/report/fragment/", query)
    assert response.status_code == 200, response.content[:500]
    return response.json(), time.perf_counter() - t0


def wait_for(condition, what, timeout=240):
    return conftest.wait_for(condition, timeout, what)


def fresh_row(campaign):
    row = ReportCache.objects.filter(pk=campaign.pk).first()
    version = fragment_version(campaign)
    return row if row is not None and row.version == version and row.computed_at else None


def fragment_version(campaign):
    from study.reports.snapshot import vote_state

    return vote_state(Campaign.objects.get(pk=campaign.pk)).version


@pytest.mark.redis
def test_a_worker_computes_the_report_and_a_request_never_waits_for_it(
    campaign, client, researcher, start_worker, media_root, redis_url, celery_app, settings
):
    settings.SRMOS_REPORT_BUDGET_S = 0.05  # well under what this report takes (checked below)
    celery_app(redis_url, {"visibility_timeout": 3600}, eager=False)
    client.force_login(researcher)
    # No worker yet: the request asks for the report and answers at once, "computing".
    first, _ = fragment(client, campaign)
    assert first["computing"] is True and first["fresh"] is False
    assert first["version"].startswith("+now:")  # no report yet; the MOS of the votes now
    assert "being computed" in first["html"] and first["html"].count("<table") == 1
    assert "now, 54 votes" in first["html"] and 'id="mos-now-table"' in first["html"]
    assert "Computing the report" in first["freshness"]
    page = client.get(f"/admin/study/campaign/{campaign.pk}/report/")
    assert page.status_code == 200 and b'data-computing="yes"' in page.content

    worker = start_worker(worker_env(redis_url, media_root), queues="cpu", name="reports")
    row = wait_for(lambda: fresh_row(campaign), "the worker's report")
    # A real, slow analysis: the worker took longer than the budget a request may spend.
    assert row.compute_seconds > settings.SRMOS_REPORT_BUDGET_S
    ready, _ = fragment(client, campaign)
    assert ready["fresh"] is True and ready["computing"] is False
    assert "54 rating votes from 6 raters" in ready["html"]
    assert ready["freshness"].startswith("As of 54 votes, computed")

    # New votes (no hook: the request below is the first to ask): the request shows the last
    # report, says it is recomputing, and waits for nothing; the worker catches up.
    simulate(campaign, raters=2, seed=2, hook=False)
    stale, elapsed = fragment(client, campaign, version=ready["version"])
    assert stale["changed"] is True and stale["computing"] is True
    assert "new votes arrived, recomputing" in stale["freshness"]
    assert elapsed < row.compute_seconds  # answered from the cache, not by computing
    # The MOS of every vote so far comes at once, above the last report (as of 54 votes).
    assert "now, 72 votes" in stale["html"] and "54 rating votes from 6 raters" in stale["html"]
    wait_for(lambda: fresh_row(campaign), "the recomputed report")
    newer, _ = fragment(client, campaign, version=ready["version"])
    assert newer["changed"] is True and "72 rating votes from 8 raters" in newer["html"]
    assert "mos-now" not in newer["html"]  # fresh: the report's own MOS table is the current one
    assert "refresh_report" in worker.log.read_text()


@pytest.mark.redis
def test_a_burst_of_votes_costs_one_recomputation(
    campaign, start_worker, media_root, redis_url, celery_app
):
    celery_app(redis_url, {"visibility_timeout": 3600}, eager=False)
    start_worker(worker_env(redis_url, media_root), queues="cpu", name="reports")
    assert ReportCache.objects.votes_arrived(campaign.pk)  # the votes so far ask for a report
    wait_for(lambda: fresh_row(campaign), "the first report")
    before = ReportCache.objects.get(pk=campaign.pk).computations
    # A burst of votes, each calling the hook: the simulated votes asked (record_votes calls
    # it), and the votes after them find it asked (one more may ask if the worker claimed the
    # first request in the middle of the burst).
    simulate(campaign, raters=2, seed=3, hook=False)
    asked = [ReportCache.objects.votes_arrived(campaign.pk) for _ in range(50)]
    assert asked.count(True) <= 1
    row = wait_for(lambda: fresh_row(campaign), "the recomputed report")
    assert row.n_votes == 72 and row.computations - before <= 2


def test_with_eager_celery_a_large_report_is_computed_beside_the_request(
    campaign, client, researcher, settings, celery_app
):
    """No worker (a demo with eager Celery): a report predicted to exceed the budget runs in a
    thread of the web process; the request answers "computing" and the page polls."""
    celery_app(eager=True)
    settings.SRMOS_REPORT_BUDGET_S = 0.001
    client.force_login(researcher)
    first, _ = fragment(client, campaign)
    assert first["computing"] is True and "being computed" in first["html"]
    wait_for(lambda: fresh_row(campaign), "the report computed beside the request")
    ready, _ = fragment(client, campaign)
    assert ready["fresh"] is True and "54 rating votes from 6 raters" in ready["html"]
    # The figures come from the same cache.
    figures = client.get(f"/admin/study/campaign/{campaign.pk}/report/figures/").json()
    assert figures["version"] == ready["version"] and "data:image/svg+xml" in figures["html"]


def test_a_poll_with_no_new_vote_reads_one_row(campaign, client, researcher, celery_app):
    celery_app(eager=True)
    client.force_login(researcher)
    ready, _ = fragment(client, campaign)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        peek, _ = fragment(client, campaign, version=ready["version"], peek=1)
    assert peek == {**peek, "changed": False, "fresh": True, "computing": False}
    analysis = [q["sql"] for q in queries if '"study_trial"' in q["sql"]]
    assert len(analysis) == 1  # the version's aggregate: no vote is read, nothing computed
