"""The same code on the embedded SQLite default and on PostgreSQL (mandatory under CI)."""

import pytest
from django.db import connection

from tests.conftest import require


@pytest.mark.postgres
@pytest.mark.django_db
def test_it_runs_on_postgresql_when_configured():
    require(
        connection.vendor == "postgresql",
        "DATABASE_URL does not name a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/test)",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


@pytest.mark.django_db
def test_infinite_psnr_of_the_reference_survives_the_database(live_campaign):
    # The HR reference's PSNR is +inf: both SQLite and PostgreSQL must hand it back as such.
    hr = live_campaign.candidates.filter(method__slug="hr").first()
    hr.refresh_from_db()
    assert hr.psnr == float("inf")
