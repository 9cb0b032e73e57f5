import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("study", "0012_one_person_one_session"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReportCache",
            fields=[
                (
                    "campaign",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="report_cache",
                        serialize=False,
                        to="study.campaign",
                    ),
                ),
                ("version", models.CharField(blank=True, max_length=100)),
                (
                    "n_votes",
                    models.PositiveIntegerField(default=0, help_text="votes in the analysis frame"),
                ),
                ("last_vote_at", models.DateTimeField(blank=True, null=True)),
                ("body", models.JSONField(blank=True, null=True)),
                ("figures", models.JSONField(blank=True, null=True)),
                ("error", models.TextField(blank=True)),
                ("computed_at", models.DateTimeField(blank=True, null=True)),
                ("compute_seconds", models.FloatField(default=0.0)),
                ("computations", models.PositiveIntegerField(default=0)),
                ("requested_at", models.DateTimeField(blank=True, null=True)),
                ("running_since", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "live report cache",
            },
        ),
    ]
