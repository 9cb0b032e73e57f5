"""One snapshot of a campaign's votes: what a report or an export reads, and the count it states."""

from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Max

from study.models import Trial


@contextmanager
def snapshot():
    """A read transaction whose queries all see the database as of its first one.

    PostgreSQL: REPEATABLE READ, READ ONLY. SQLite: a deferred transaction (WAL readers see one
    snapshot; IMMEDIATE, the site's mode for writes, would block every vote meanwhile). Inside
    an outer transaction (a test's, an atomic request) that transaction is the snapshot."""
    if connection.in_atomic_block:
        yield
        return
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        mode, connection.transaction_mode = connection.transaction_mode, "DEFERRED"
        try:
            with transaction.atomic():
                yield
        finally:
            connection.transaction_mode = mode
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


@dataclass(frozen=True)
class VoteState:
    """What a report reflects: the page's version string, the answered trials' count and the
    last answer's time."""

    version: str
    n_answered: int
    last_vote_at: object


def vote_state(campaign):
    """The campaign's current :class:`VoteState` (one aggregate query)."""
    state = (
        Trial.objects.answered()
        .filter(rater__campaign=campaign)
        .aggregate(n=Count("id"), last=Max("answered_at"))
    )
    last = state["last"].timestamp() if state["last"] else 0
    metrics = campaign.metrics_changed_at.timestamp() if campaign.metrics_changed_at else 0
    return VoteState(f"{state['n']}-{last:.6f}-{metrics:.6f}", state["n"], state["last"])
