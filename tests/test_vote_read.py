"""The vote frame every rating report and export reads (``ACR.votes``: ids through one cursor, the
names joined per candidate, timestamps formatted in one array pass) holds exactly what a per-row
ORM read with its joins gives: the same cells, types and order, on SQLite and PostgreSQL."""

import datetime as dt

import pandas as pd
import pytest
from django.core.management import call_command

from study.models import Trial
from study.protocols.acr import EXTRA_COLUMNS, VOTE_COLUMNS
from study.reports import frames

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(live_campaign):
    call_command("simulate_raters", live_campaign.name, "--raters", "3", "--seed", "4")
    return live_campaign


def per_row(campaign, people_only=False):
    """The frame as a per-row ORM read with joins makes it (the read before the cursor's)."""
    rows = (
        Trial.objects.for_analysis(campaign, people_only)
        .order_by("rater_id", "position")
        .values_list(
            *("rater_id", "candidate__image__dataset__name", "candidate__image__name"),
            *("candidate__method__slug", "score", "kind", "repeat", "answered_at"),
            *("duration_ms", "server_ms", "flags", "rater__platform", "expected", "position"),
        )
    )
    frame = pd.DataFrame(
        [
            (Trial.rater_key(r), d, i, m, s, k, rep, t.isoformat(), *rest)
            for r, d, i, m, s, k, rep, t, *rest in rows
        ],
        columns=[*VOTE_COLUMNS, *EXTRA_COLUMNS],
    )
    frame["lr"] = frame["method"].map(campaign.lr_by_method()).astype(object)
    return frame.astype({"score": "int64", "repeat": "int64", "position": "int64"})


def test_the_vote_frame_is_the_per_row_read_cell_for_cell(campaign):
    votes = Trial.objects.for_analysis(campaign).order_by("pk")
    first, second, third = votes.values_list("pk", flat=True)[:3]
    # Times with no fraction (isoformat then writes none), the last microsecond of a second, a
    # missing claimed duration and a flag: the cells where a formatter could differ.
    Trial.objects.filter(pk=first).update(
        answered_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        duration_ms=None,
        flags="fast",
    )
    Trial.objects.filter(pk=second).update(
        answered_at=dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        server_ms=None,
    )
    Trial.objects.filter(pk=third).update(
        answered_at=dt.datetime(2026, 6, 30, 12, 0, 0, 1, tzinfo=dt.UTC)
    )
    frame = campaign.kind.votes(campaign)
    pd.testing.assert_frame_equal(frame, per_row(campaign))
    stamps = set(frame["timestamp"])
    assert {
        "2026-01-02T03:04:05+00:00",
        "1999-12-31T23:59:59.999999+00:00",
        "2026-06-30T12:00:00.000001+00:00",
    } <= stamps
    pd.testing.assert_frame_equal(
        campaign.kind.votes(campaign, people_only=True), per_row(campaign, people_only=True)
    )
    # The live page's quick MOS read holds the same votes.
    quick = frames.rating_votes(campaign)
    key = ["rater", "dataset", "image", "method", "score", "kind"]
    assert sorted(map(tuple, quick[key].to_numpy().tolist())) == sorted(
        map(tuple, frame[key].to_numpy().tolist())
    )


def test_no_votes_yet_is_an_empty_frame_with_every_column(make_campaign, eager_celery):
    campaign = make_campaign()
    frame = campaign.kind.votes(campaign)
    assert frame.empty and list(frame.columns) == [*VOTE_COLUMNS, *EXTRA_COLUMNS, "lr"]


def test_the_report_read_is_the_validated_vote_frame(campaign):
    """The report's read (identifiers as categoricals, times as datetimes) is exactly what
    validating the exported frame gives: cells, types, categories and order."""
    from study.analysis import validate_votes

    Trial.objects.filter(pk=Trial.objects.for_analysis(campaign).order_by("pk")[0].pk).update(
        answered_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # a whole second
    )
    got = campaign.kind.report_votes(campaign)
    want = validate_votes(frames.votes_frame(campaign))
    pd.testing.assert_frame_equal(got, want, check_categorical=True, check_exact=True)
    assert got.attrs == want.attrs
    for col in ("rater", "dataset", "image", "method"):
        assert list(got[col].cat.categories) == sorted(got[col].astype(str).unique())
