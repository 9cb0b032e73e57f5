"""Registering a researcher's own network: the row's life around the worker's check (ORM only).

`register()` stores the file once (sha256) and queues the check; the worker `claim()`s the row,
runs `study.generation.networks.check` and `settle()`s it: a refusal keeps its message and no
method; a pass creates the Method and marks the row valid in one transaction, so nothing is ever
half-registered. A second delivery of the task finds the row claimed or settled and does nothing.
"""

import re

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

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
    from study.generation.tasks import validate_model

    # Networks run on the GPU workers; their check runs where they will run.
    validate_model.apply_async(args=[registration_id], queue="gpu")


MAX_ATTEMPTS = 3  # a model that kills its worker would kill the next one too


def check_again(registration):
    """Queue the check of a registration no worker is on (queued with its message lost, or
    running on a worker that died); returns whether it was queued."""
    now = timezone.now()
    waiting = Q(status=ModelRegistration.QUEUED) | ModelRegistration.abandoned(now)
    if not ModelRegistration.objects.filter(waiting, pk=registration.pk).exists():
        return False
    transaction.on_commit(lambda: queue_check(registration.pk))
    return True


def claim(registration_id, token):
    """Claim a queued or abandoned registration; 1 when this caller won it."""
    now = timezone.now()
    claimable = Q(status=ModelRegistration.QUEUED) | ModelRegistration.abandoned(now)
    return ModelRegistration.objects.filter(claimable, pk=registration_id).update(
        status=ModelRegistration.RUNNING,
        claim=token,
        started_at=now,
        attempts=F("attempts") + 1,
    )


def settle(registration, token, findings, refusal):
    """Write the worker's verdict under its claim: the method and a valid row, or the refusal."""
    mine = ModelRegistration.objects.filter(
        pk=registration.pk, claim=token, status=ModelRegistration.RUNNING
    )
    now = timezone.now()
    if refusal is None:
        try:
            with transaction.atomic():
                method = Method.objects.create(
                    slug=registration.slug,
                    name=registration.name or registration.slug,
                    kind=Method.NETWORK,
                    description=registration.description,
                    parameters={
                        "model_sha256": registration.sha256,
                        "half": bool(registration.half_requested and findings["half_ok"]),
                    },
                )
                if not mine.update(
                    status=ModelRegistration.VALID, method=method, finished_at=now, **findings
                ):
                    raise _Lost
            return
        except _Lost:
            return  # another worker took the row over; it settles it
        except IntegrityError:
            refusal = f"a method named {registration.slug!r} was created meanwhile; register again"
    mine.update(status=ModelRegistration.REFUSED, error=refusal, finished_at=now)


class _Lost(Exception):
    pass
