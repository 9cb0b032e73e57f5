"""Registrations get a heartbeat lease like candidates (a dead worker's check is taken over one
lease later) and the time their task was last published; candidates remember when their metrics
were queued. Both let the reconciler queue again what a dead worker or a lost message left."""

import django.utils.timezone
from django.db import migrations, models


def expire_running_checks(apps, schema_editor):
    # A check running during the upgrade has no lease yet: its worker is taken to be gone (the
    # upgrade restarted it), so the reconciler queues the check again.
    ModelRegistration = apps.get_model("study", "ModelRegistration")
    ModelRegistration.objects.filter(status="running").update(
        lease_expires=django.utils.timezone.now()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("study", "0012_one_person_one_session"),
    ]

    operations = [
        migrations.AddField(
            model_name="candidate",
            name="metrics_queued_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="modelregistration",
            name="lease_expires",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="modelregistration",
            name="queued_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(expire_running_checks, migrations.RunPython.noop),
    ]
