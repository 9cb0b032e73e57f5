"""Registering a researcher's own network: the web side of the row's life (ORM only).

`register()` stores the file once (sha256) and queues the check; the worker's task
(`study.generation.tasks.validate_model`) claims the row, runs `study.generation.networks.check`
and settles it: a refusal keeps its message and no method, and deletes the file from storage
(unless another registration of the same content passed or waits); a pass creates the Method and
marks the row valid in one transaction, so nothing is ever half-registered. A second delivery of the task
finds the row claimed or settled and does nothing.

A check whose worker died is taken over one lease after its last heartbeat (`lease_expires`, like
a candidate's): the reconciler (`study.generation.reconcile`) queues it again by itself, and
"Check again" or registering the same name again does so at once.
"""

import re

from django.db import transaction
from django.utils import timezone

from study.generation import tasks
from study.models import Method
from study.models.networks import ModelRegistration, store_model_file


class RegistrationRefused(ValueError):
    """The request itself is wrong (before any worker looks at the file)."""


def check_request(slug, route, class_path):
    if not re.fullmatch(r"[-a-zA-Z0-9_]+", slug or ""):
        raise RegistrationRefused(
            f"method name {slug!r}: use letters, digits, '-' and '_' (it names the method in "
            "every table)"
        )
    if Method.objects.filter(slug=slug).exists():
        raise RegistrationRefused(f"a method named {slug!r} exists already; choose another name")
    waiting = ModelRegistration.objects.filter(
        slug=slug, status__in=[ModelRegistration.QUEUED, ModelRegistration.RUNNING]
    ).first()
    if waiting is not None:
        raise RegistrationRefused(_waiting_reason(waiting, check_again(waiting)))
    if route == "class" and not class_path:
        raise RegistrationRefused('the "class" route needs the class path (package.module:Class)')


def register(fileobj, original_name, *, slug, user=None, enqueue=True, **fields):
    """Store the file and queue its check; returns the registration row.

    Raises RegistrationRefused for a request that cannot be registered whatever the file.
    """
    check_request(slug, fields.get("route", "auto"), fields.get("class_path", ""))
    path, sha, size = store_model_file(fileobj, original_name)
    registration = ModelRegistration.objects.create(
        slug=slug,
        file=path,
        sha256=sha,
        size=size,
        original_name=original_name,
        created_by=user,
        **fields,
    )
    if enqueue:
        transaction.on_commit(lambda: queue_check(registration.pk))
    return registration


def queue_check(registration_id):
    tasks.validate_model.delay(registration_id)


# What `check_again` found: queued for a worker now, a live worker on it, or settled already.
QUEUED_AGAIN, BEING_CHECKED, SETTLED = "queued again", "being checked", "settled"


def check_again(registration):
    """Queue the check of a registration no worker is on (queued with its message lost, or
    running on a worker that died: its lease ran out); returns QUEUED_AGAIN, BEING_CHECKED (a
    worker renewed its lease within one lease) or SETTLED."""
    now = timezone.now()
    row = ModelRegistration.objects.filter(pk=registration.pk)
    if row.requeue_abandoned(now, queued_at=now) or row.filter(
        status=ModelRegistration.QUEUED
    ).update(queued_at=now):
        # A duplicate of a message still in the broker is harmless: the claim makes it a no-op.
        transaction.on_commit(lambda: queue_check(registration.pk))
        return QUEUED_AGAIN
    if row.filter(status=ModelRegistration.RUNNING).exists():
        return BEING_CHECKED
    return SETTLED


def _waiting_reason(registration, state):
    slug = registration.slug
    if state == QUEUED_AGAIN:
        return (
            f"a model named {slug!r} is waiting for its check (registration "
            f"#{registration.pk}); it is queued again for a worker now (if its worker had "
            "stopped, another takes it over). Follow it on its page, or choose another name."
        )
    if state == BEING_CHECKED:
        return (
            f"a model named {slug!r} is being checked by a worker right now (registration "
            f"#{registration.pk}); wait for its verdict, or choose another name."
        )
    return (
        f"the check of a model named {slug!r} has just finished (registration "
        f"#{registration.pk}): see its verdict, and register again if it was refused."
    )
