"""The live report from its cache: a worker computes it when votes arrive, a page request never
waits for the analysis beyond its budget (it shows the last report, or "computing", and polls),
and a burst of votes costs at most two recomputations (its first vote's and one for the rest), not
one per vote."""

import json
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
    """The report row once its tables and its figures (drawn after them) are of the votes now."""
    row = ReportCache.objects.filter(pk=campaign.pk).first()
    version = fragment_version(campaign)
    if row is None or not row.computed_at or row.version != version:
        return None
    return row if row.figures_version == version else None


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
    log = worker.log.read_text()
    assert "refresh_report" in log
    # The worker's process forked children that computed parts of the tables meanwhile.
    assert "the method comparisons computed beside, in process" in log


@pytest.mark.redis
def test_a_burst_of_votes_costs_at_most_two_recomputations(
    campaign, start_worker, media_root, redis_url, celery_app
):
    celery_app(redis_url, {"visibility_timeout": 3600}, eager=False)
    start_worker(worker_env(redis_url, media_root), queues="cpu", name="reports")
    assert ReportCache.objects.votes_arrived(campaign.pk)  # the votes so far ask for a report
    wait_for(lambda: fresh_row(campaign), "the first report")
    before = ReportCache.objects.get(pk=campaign.pk).computations
    # A burst of votes, each calling the hook: the first asks, and the worker starts at once
    # (no delay); the votes after it find the request pending until the worker claims it, and
    # those that arrive while it computes ask once more, for one computation after it.
    simulate(campaign, raters=2, seed=3, hook=False)
    asked = [ReportCache.objects.votes_arrived(campaign.pk) for _ in range(50)]
    assert 1 <= asked.count(True) <= 2
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


def test_the_tables_are_stored_before_the_figures_are_drawn(
    campaign, client, researcher, celery_app, monkeypatch
):
    """A recomputation stores every table of the new votes first and draws the figures after:
    meanwhile the page shows the new tables, says the figures are behind and by how much, and
    polls until they follow."""
    from study.reports import live

    celery_app(eager=False)  # as with a worker: requests never compute
    client.force_login(researcher)
    assert live.refresh(campaign.pk)
    ready, _ = fragment(client, campaign)
    assert ready["fresh"] is True and ready["computing"] is False
    simulate(campaign, raters=2, seed=5, hook=False)
    seen, store_figures = {}, live._store_figures

    def between(*args):  # the moment the tables are stored and the figures not yet
        seen["page"], _ = fragment(client, campaign, version=ready["version"])
        seen["figures"] = client.get(f"/admin/study/campaign/{campaign.pk}/report/figures/").json()
        store_figures(*args)

    monkeypatch.setattr(live, "_store_figures", between)
    assert live.refresh(campaign.pk)
    mid = seen["page"]
    assert mid["changed"] is True and mid["fresh"] is True
    assert mid["computing"] is True  # the page polls again for the figures
    assert "72 rating votes from 8 raters" in mid["html"] and "mos-now" not in mid["html"]
    assert "the figures, as of 54, are being redrawn" in mid["freshness"]
    assert "+figures:" in mid["version"] and seen["figures"]["version"] == mid["version"]
    assert "These figures are as of 54 votes, the tables above as of 72" in seen["figures"]["html"]
    assert "data:image/svg+xml" in seen["figures"]["html"]  # the last figures stay meanwhile
    done, _ = fragment(client, campaign, version=mid["version"])
    assert done["changed"] is True and done["computing"] is False
    assert done["freshness"].startswith("As of 72 votes") and done["freshness"].endswith(".")
    assert "+figures:" not in done["version"]
    figures = client.get(f"/admin/study/campaign/{campaign.pk}/report/figures/").json()
    assert (
        "These figures are as of" not in figures["html"] and figures["version"] == done["version"]
    )


def test_figures_left_behind_by_a_stopped_computation_are_asked_for_again(
    campaign, client, researcher, celery_app, monkeypatch
):
    """A worker killed between the tables and the figures: the next page request sees no claim
    and asks for the report again."""
    from study.reports import live

    celery_app(eager=False)
    client.force_login(researcher)
    monkeypatch.setattr(live, "_store_figures", lambda *args: None)  # stopped before
    assert live.refresh(campaign.pk)
    asked = []
    monkeypatch.setattr(live, "_ask", lambda campaign_id, cache: asked.append(campaign_id))
    reply, _ = fragment(client, campaign)
    assert reply["fresh"] is True and reply["computing"] is True and asked == [campaign.pk]


def test_figures_drawn_beside_the_tables_are_the_figures_drawn_here(campaign, monkeypatch):
    """The worker's child process draws exactly what this process would; a child that fails or
    hangs, or a fork refused, leaves the drawing to this process; a cancelled child leaves no
    process and no file."""
    import os

    import matplotlib

    from study.reports import live

    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "srmos")  # no random ids in SVGs
    state, fields, draw = live.compute_tables(campaign)
    here = draw()
    assert len(here["figures"]) >= 2 and here["figures_n_votes"] == 54
    beside = live.Beside(draw)
    same = beside() == here  # byte for byte (a failed == would print megabytes of SVG)
    assert same
    assert not os.path.exists(beside.path)

    parent = os.getpid()

    def fails_in_the_child():
        if os.getpid() != parent:
            raise RuntimeError("out of memory, say")
        return draw()

    same = live.Beside(fails_in_the_child)() == here  # drawn here instead
    assert same

    def stuck_in_the_child():
        if os.getpid() != parent:
            time.sleep(60)
        return draw()

    stuck = live.Beside(stuck_in_the_child)
    t0 = time.perf_counter()
    same = stuck(timeout=0.5) == here  # stopped, and drawn here instead
    assert same and time.perf_counter() - t0 < 30
    with pytest.raises(ChildProcessError):
        os.waitpid(stuck.pid, os.WNOHANG)  # the stuck child is gone

    def no_fork():
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", no_fork)
    unforked = live.Beside(draw)
    same = unforked() == here  # drawn here, after the tables
    assert same and unforked.pid is None and not os.path.exists(unforked.path)
    monkeypatch.undo()
    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "srmos")
    cancelled = live.Beside(draw)
    cancelled.cancel()
    assert not os.path.exists(cancelled.path)
    with pytest.raises(ChildProcessError):
        os.waitpid(cancelled.pid, os.WNOHANG)  # reaped: no zombie left


def test_a_rating_report_split_over_two_processes_is_the_report_computed_here(
    campaign, monkeypatch, caplog
):
    """Where the worker may fork, a child computes the method comparisons and the metric panel
    while the worker screens the raters, and the figures are drawn from what the tables
    computed, the metric panel's in a child again: the same tables and figures, byte for byte,
    as one process computing everything."""
    import logging

    import matplotlib

    from study.reports import live

    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "srmos")  # no random ids in SVGs
    _, here, draw = live.compute_tables(campaign)
    figures_here = draw()
    with caplog.at_level(logging.INFO, logger="study.reports.live"):
        _, split, draw = live.compute_tables(campaign, beside=True)
        figures_split = draw()
    for fields in (here, split):
        fields["body"]["manifest"].pop("created_utc")  # the second each was computed in
    assert json.dumps(split, sort_keys=True) == json.dumps(here, sort_keys=True)
    assert any(f["title"].startswith("MOS against each metric") for f in figures_here["figures"])
    same = figures_split == figures_here  # (a failed == would print megabytes of SVG)
    assert same
    for part in (
        "the method comparisons",
        "the metric panel's stimuli",
        "the metric panel's figure",
    ):
        assert f"{part} computed beside" in caplog.text


def test_overlapping_children_keep_collections_frozen_until_the_last_is_done(monkeypatch):
    """Two children at once (a report's parts): the objects stay out of collections until both
    are done, then collections see them again; a result that cannot be read back is computed
    here instead."""
    import gc

    from study.reports import live

    first, second = live.Beside(lambda: "first", "one part"), live.Beside(lambda: 2, "another")
    assert first() == "first"
    assert gc.get_freeze_count() > 0  # the second child still runs
    assert second() == 2
    assert gc.get_freeze_count() == 0

    def unreadable(_):
        raise EOFError("truncated")

    monkeypatch.setattr(live.pickle, "load", unreadable)
    assert live.Beside(lambda: [1, 2, 3], "a part")() == [1, 2, 3]  # computed here instead
    assert gc.get_freeze_count() == 0


def test_a_part_that_fails_in_its_child_fails_the_report_and_leaves_no_process(
    campaign, monkeypatch
):
    """A part of the tables that cannot be computed (in its child, then in the worker) makes
    the report's error, as one process computing everything would; the other child is
    stopped and reaped, and no file is left behind."""
    import glob
    import os
    import tempfile

    import study.analysis.report as report
    from study.analysis import VotesError
    from study.reports import live

    def broken(*args, **kwargs):
        raise VotesError("the comparisons cannot be computed")

    monkeypatch.setattr(report, "crossed_tests", broken)
    children, in_child = [], live._in_child
    monkeypatch.setattr(live, "_in_child", lambda *a: children.append(in_child(*a)) or children[-1])
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "srmos-beside-*")))
    _, fields, draw = live.compute_tables(campaign, beside=True)
    assert fields["error"] == "the comparisons cannot be computed" and draw is None
    assert len(children) == 2  # the comparisons' and the panel's
    for child in children:
        with pytest.raises(ChildProcessError):
            os.waitpid(child.pid, os.WNOHANG)  # stopped and reaped: no zombie
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "srmos-beside-*"))) == before
