"""A row that is its own Celery job: queued -> running -> settled (done, failed, valid...).

Candidates, imports and model registrations share this one mechanism:

- **Claim.** A worker claims a row with one conditional UPDATE that writes a random token; the
  row count says who won, so a task delivered twice does the work once.
- **Lease.** A running row belongs to its worker while the lease lasts. A row whose lease ran out
  lost its worker (killed mid-task) and can be claimed again by a redelivered or re-published
  task. Candidates and registrations have a `lease_expires` that a heartbeat renews (a takeover
  one lease after a death); imports have none, and their lease is Celery's hard time limit
  counted from `started_at`, which no task outlives.
- **Reconcile.** A periodic task (`study.generation.reconcile`) puts rows whose lease ran out back
  in the queue (`requeue_abandoned`) and publishes again the queued rows whose message was lost;
  the claim makes any duplicate message a no-op, so a row is still done once.
- **Settle.** The outcome is written only under the token, so an attempt that lost its lease to a
  takeover writes nothing.

The models keep their own fields (`status`, `claim`, `attempts`, `started_at`, `finished_at`,
and `lease_expires` where there is a heartbeat); this module gives them the behaviour.
"""

import logging
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, models
from django.db.models import F, Q
from django.utils import timezone

log = logging.getLogger(__name__)


def new_token():
    """A claim token: random, so two attempts at the same row never share one."""
    return uuid.uuid4().hex


def heartbeat_lease():
    return timedelta(seconds=settings.SRMOS_GENERATION_LEASE)


def _time_limit_cutoff(now):
    """A task cannot outlive Celery's hard time limit: a job running since before this lost its
    worker (the minute covers the worker's own shutdown)."""
    return now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


class JobRow:
    """Mixin for a model whose rows are jobs (the fields are the model's own, see above)."""

    QUEUED = "queued"
    RUNNING = "running"
    # True for a model with `lease_expires`, renewed by `heartbeat()` while the work runs.
    HEARTBEAT = False

    @classmethod
    def abandoned(cls, now=None):
        """Running, but its worker is gone (it died mid-task): a filter."""
        now = now or timezone.now()
        if cls.HEARTBEAT:
            return Q(status=cls.RUNNING, lease_expires__lt=now)
        return Q(status=cls.RUNNING, started_at__lt=_time_limit_cutoff(now))

    def is_abandoned(self, now=None):
        now = now or timezone.now()
        if self.status != self.RUNNING:
            return False
        if self.HEARTBEAT:
            return self.lease_expires is not None and self.lease_expires < now
        return self.started_at is not None and self.started_at < _time_limit_cutoff(now)


class JobQuerySet(models.QuerySet):
    """Claim, renew and settle job rows; each is one conditional UPDATE whose row count tells
    the caller whether it won."""

    def claimable(self, now=None):
        """Rows a worker may take: queued, or running on a worker that is gone."""
        return self.filter(Q(status=self.model.QUEUED) | self.model.abandoned(now))

    def claim(self, token, **reset):
        """Claim this queryset's claimable rows for `token`; returns how many this caller won
        (0: settled, or a live worker has them). `reset` fields are written with the claim,
        e.g. an import's progress counters."""
        now = timezone.now()
        if self.model.HEARTBEAT:
            reset["lease_expires"] = now + heartbeat_lease()
        return self.claimable(now).update(
            status=self.model.RUNNING,
            claim=token,
            started_at=now,
            attempts=F("attempts") + 1,
            **reset,
        )

    def held(self, token):
        """The rows `token` still holds; an attempt whose rows were taken over holds none."""
        return self.filter(claim=token, status=self.model.RUNNING)

    def requeue_abandoned(self, now=None, **fields):
        """Put this queryset's rows whose worker is gone back in the queue (`fields`, e.g. a
        queued-at time, written with them); returns the primary keys to publish a task for.

        The claim is cleared, so an attempt that was only slow (not dead) settles nothing."""
        now = now or timezone.now()
        lost = self.filter(self.model.abandoned(now))
        pks = list(lost.values_list("pk", flat=True))
        if not pks:
            return []
        if self.model.HEARTBEAT:
            fields["lease_expires"] = None
        # Conditional again: a row claimed meanwhile by a redelivered task stays with it (a
        # message published for it anyway is a no-op).
        lost.filter(pk__in=pks).update(status=self.model.QUEUED, claim="", **fields)
        return pks

    def renew(self, token):
        return self.held(token).update(lease_expires=timezone.now() + heartbeat_lease())

    def settle(self, token, status, **outcome):
        """Write the outcome of the rows `token` still holds; returns how many were written."""
        if self.model.HEARTBEAT:
            outcome["lease_expires"] = None
        return self.held(token).update(status=status, finished_at=timezone.now(), **outcome)


@contextmanager
def heartbeat(model, token):
    """Renew the lease of `model`'s rows held by `token`, every third of a lease, until the
    block ends; the work inside may take far longer than one lease."""
    stop = threading.Event()
    interval = heartbeat_lease().total_seconds() / 3

    def beat():
        try:
            while not stop.wait(interval):
                model.objects.renew(token)
        except Exception:
            log.exception("heartbeat for claim %s stopped", token)
        finally:
            connection.close()  # the thread's own connection, or it stays open on the server

    thread = threading.Thread(target=beat, name=f"lease-{token[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def waiting_messages(queue):
    """How many messages wait in the broker's `queue`, or None when the broker cannot be asked
    (down, or a transport that cannot count). Reserved and running messages are not counted."""
    from celery import current_app

    try:
        with current_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            try:
                return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except conn.channel_errors:
                return 0  # no such queue (a broker restarted empty): nothing waits in it
    except Exception as exc:
        log.warning("cannot count the messages in queue %s: %s", queue, exc)
        return None
