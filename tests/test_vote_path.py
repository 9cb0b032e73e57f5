"""The vote path's cost (issue 24): one read and one update per vote, with every rule kept.

The read (`Rater.objects.for_vote`) and the update (`Rater._store_vote`, which on PostgreSQL
also asks for the live report again) are SQL of their own; these tests hold them to what the
ORM and the form gave before: the same rows, the same cleaned fields and messages, the same
URLs. The refusals themselves are tested where they were (test_integrity, test_rater_session).
"""

import pytest
from celery import current_app
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, set_script_prefix

from study.models import Rater, ReportCache, rater_url
from study.rating.forms import VoteForm, clean_vote
from tests.conftest import get_ready, require

pytestmark = pytest.mark.django_db


def post_vote(client, rater, position, score=3):
    response = client.post(
        f"/r/{rater.token}/vote/",
        {"position": position, "score": score, "duration_ms": 1200},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_a_vote_is_one_read_and_one_update(live_campaign, client):
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    post_vote(client, rater, 0)  # the first vote also records the start, in a transaction
    with CaptureQueriesContext(connection) as queries:
        answer = post_vote(client, rater, 1)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements in (["SELECT", "UPDATE"], ["SELECT", "WITH"]), statements
    assert answer["status"] == "stored"
    assert answer["next"]["position"] == 2
    assert answer["next"]["src"] == reverse("study:image", args=[rater.token, 2])
    assert Rater.objects.get(pk=rater.pk).trials.get(position=1).score == 3


def test_on_postgresql_the_vote_asks_for_the_report_in_its_own_statement(live_campaign, client):
    require(connection.vendor == "postgresql", "the data-modifying WITH is PostgreSQL's")
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    eager = current_app.conf.task_always_eager
    # A deployment with a worker: the vote asks it for the report (the task is really sent).
    current_app.conf.task_always_eager = False
    try:
        post_vote(client, rater, 0)  # the campaign's first vote makes its cache row
        cache = ReportCache.objects.get(pk=live_campaign.pk)
        assert cache.requested_at is not None
        ReportCache.objects.filter(pk=live_campaign.pk).update(requested_at=None)
        with CaptureQueriesContext(connection) as queries:
            post_vote(client, rater, 1)
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SELECT", "WITH"]
        assert ReportCache.objects.get(pk=live_campaign.pk).requested_at is not None
        # Already asked: the next vote's statement leaves the flag, and sends nothing more.
        asked_at = ReportCache.objects.get(pk=live_campaign.pk).requested_at
        post_vote(client, rater, 2)
        assert ReportCache.objects.get(pk=live_campaign.pk).requested_at == asked_at
    finally:
        current_app.conf.task_always_eager = eager


def test_the_votes_read_gives_what_the_orm_gives(live_campaign, client, django_assert_num_queries):
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    post_vote(client, rater, 0)
    read, pending = Rater.objects.for_vote(rater.token)
    orm = Rater.objects.select_related("campaign").get(pk=rater.pk)
    expected = list(orm.trials.pending().select_related("candidate")[:3])
    assert [t.pk for t in pending] == [t.pk for t in expected]
    # What a vote reads costs no further query: the session, its campaign, the trials' rows.
    with django_assert_num_queries(0):
        assert read.stage() == Rater.TRIALS and read.is_open()
        assert pending[0].rater is read and read.campaign.protocol == orm.campaign.protocol
        assert (pending[0].candidate.width, pending[0].candidate.height) == (
            expected[0].candidate.width,
            expected[0].candidate.height,
        )
        for mine, theirs in ((read, orm), (read.campaign, orm.campaign)):
            for field in type(mine)._meta.concrete_fields:
                if field.attname not in mine.get_deferred_fields():
                    assert getattr(mine, field.attname) == getattr(theirs, field.attname), field
        for mine, theirs in zip(pending, expected, strict=True):
            for field in type(mine)._meta.concrete_fields:
                assert getattr(mine, field.attname) == getattr(theirs, field.attname), field
    # The texts it leaves out are read on demand, as a deferred field is.
    assert read.campaign.consent_text == orm.campaign.consent_text
    assert read.display_checks == orm.display_checks
    assert Rater.objects.for_vote("no-such-token") == (None, [])


def test_a_finished_session_reads_no_pending_trial(live_campaign, client):
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    for position in range(rater.n_trials):
        post_vote(client, rater, position)
    read, pending = Rater.objects.for_vote(rater.token)
    assert read.pk == rater.pk and read.completed_at is not None and pending == []


@pytest.mark.parametrize(
    "fields",
    [
        {"position": "3", "score": "4", "duration_ms": "1500"},
        {"position": "0", "score": "5"},
        {"position": "7", "score": "2", "duration_ms": ""},
        {"position": "7", "score": "2", "duration_ms": "999999999999"},
        {"position": " 3", "score": "4"},
        {"position": "3.0", "score": "4"},
        {"position": "-1", "score": "4"},
        {"position": "3", "score": "-4"},
        {"position": "3", "score": ""},
        {"position": "3"},
        {"score": "3"},
        {"position": "abc", "score": "x"},
        {"position": "3", "score": "4", "duration_ms": "-5"},
        {"position": "1" * 40, "score": "4"},
    ],
)
def test_the_vote_fields_are_cleaned_as_the_form_cleans_them(fields):
    data, refusal = clean_vote(fields)
    form = VoteForm(fields)
    if form.is_valid():
        assert (data, refusal) == (form.cleaned_data, "")
    else:
        assert data is None
        assert refusal == " ".join(e for errors in form.errors.values() for e in errors)


@pytest.mark.parametrize("prefix", ["/", "/srmos/"])
def test_rater_urls_are_what_reverse_gives(prefix):
    set_script_prefix(prefix)
    try:
        for token in ("Ab-_09" * 5, "a b+c?", "x"):
            for name, position in (("study:image", 0), ("study:partner", 17), ("study:done", None)):
                args = [token] if position is None else [token, position]
                assert rater_url(name, token, position) == reverse(name, args=args)
    finally:
        set_script_prefix("/")


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_is_replaced_and_a_quiet_one_costs_no_query():
    require(connection.vendor == "postgresql", "the health check is PostgreSQL's backend")
    kept = connections.create_connection("default")
    try:
        with kept.cursor() as cursor:
            cursor.execute("SELECT 4242")
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]

        def last_query():
            with connection.cursor() as cursor:
                cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
                return cursor.fetchone()[0]

        # Quiet socket: usable, and no SELECT 1 reached the server.
        assert last_query() == "SELECT pg_backend_pid()"
        assert kept.is_usable()
        assert last_query() == "SELECT pg_backend_pid()"
        # The server ends the session (as a restart does): the check says so before any use.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(50):
            if not kept.is_usable():
                break
            __import__("time").sleep(0.1)
        assert not kept.is_usable()
    finally:
        kept.close()
