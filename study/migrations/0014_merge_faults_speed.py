"""Joins the three migrations written side by side: vote ids, job leases and the report cache."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("study", "0013_a_trial_vote_id"),
        ("study", "0013_b_job_leases"),
        ("study", "0013_d_report_cache"),
    ]

    operations = []
