"""Registering a researcher's own network: the web side of the row's life (ORM only).

`register()` stores the file once (sha256) and queues the check; the worker's task
(`study.generation.tasks.validate_model`) claims the row, runs `study.generation.networks.check`
and settles it: a refusal keeps its message and no method, and deletes the file from storage
(unless another registration of the same content passed or waits); a pass creates the Method and
marks the row valid in one transaction, so nothing is ever half-registered. A second delivery of the task
finds the row claimed or settled and does nothing.
"""

import re

from django.db import transaction

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
    )
    if waiting.exists():
        raise RegistrationRefused(f"a model named {slug!r} is being validated already")
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


def check_again(registration):
    """Queue the check of a registration no worker is on (queued with its message lost, or
    running on a worker that died); returns whether it was queued."""
    if not ModelRegistration.objects.filter(pk=registration.pk).claimable().exists():
        return False
    transaction.on_commit(lambda: queue_check(registration.pk))
    return True
