"""Hardening: the admin login throttle, CSV injection, secure cookies behind TLS, the
Content-Security-Policy, rater links for view-only staff, and `check --deploy`."""

import csv
import io
import os
import re
import secrets
import zipfile
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from study.models import Campaign, SourceImage
from study.reports import frames
from study.spreadsheet import safe_cell, safe_csv
from tests.conftest import get_ready, run_python, start_session, wait_for_image, wait_until_ready

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
FORMULA = '=HYPERLINK("http://x","y")'


def login(client, password, username="researcher", address="10.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


# Login throttling ---------------------------------------------------------------------------


def test_it_refuses_the_right_password_after_too_many_wrong_ones(client, researcher, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert login(client, "wrong").status_code == 200  # the form again, with its error
    assert login(client, "wrong").status_code == 429  # the third locks
    locked = login(client, "pw-researcher-1")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Per username and address: the researcher elsewhere, and another name here, may try.
    assert login(client, "wrong", address="10.0.0.2").status_code == 200
    assert login(client, "wrong", username="someone-else").status_code == 200


def test_it_lets_the_right_password_in_after_the_cool_off(client, researcher, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        login(client, "wrong")
    assert login(client, "pw-researcher-1").status_code == 429
    # The cool-off counts from the last attempt: age every attempt past it.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    response = login(client, "pw-researcher-1")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_an_administrator_can_lift_a_lock(client, researcher, settings):
    settings.AXES_FAILURE_LIMIT = 2
    login(client, "wrong"), login(client, "wrong")
    assert login(client, "pw-researcher-1").status_code == 429
    call_command("axes_reset_username", "researcher")
    assert login(client, "pw-researcher-1").status_code == 302


def test_it_takes_the_proxys_address_for_the_client_behind_tls(client, researcher, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.BEHIND_TLS_PROXY = True
    for _ in range(2):
        client.post(
            "/admin/login/",
            {"username": "researcher", "password": "wrong"},
            REMOTE_ADDR="10.0.0.9",
            HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7",
        )
    assert AccessAttempt.objects.get().ip_address == "203.0.113.7"
    # Another client behind the same proxy is not locked out with the attacker.
    response = client.post(
        "/admin/login/",
        {"username": "researcher", "password": "pw-researcher-1"},
        REMOTE_ADDR="10.0.0.9",
        HTTP_X_FORWARDED_FOR="198.51.100.2",
    )
    assert response.status_code == 302


def test_logins_without_a_request_are_not_throttled(client, researcher):
    # The test client's login() and a shell pass no request; axes alone would refuse them.
    assert client.login(username="researcher", password="pw-researcher-1")


# CSV injection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, safe",
    [
        (FORMULA, "'" + FORMULA),
        ("+1+2", "'+1+2"),
        ("-2-3", "'-2-3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-0.5", "-0.5"),
        ("-1.5e-3", "-1.5e-3"),
        ("-inf", "-inf"),
        ("P-good", "P-good"),
        ("", ""),
    ],
)
def test_a_formula_like_text_cell_is_neutralised_and_a_number_is_not(cell, safe):
    assert safe_cell(cell) == safe


def test_a_csv_without_a_formula_is_returned_as_it_was():
    text = 'a,b\n-0.5,"x, y"\n1.0,z\n'
    assert safe_csv(text) is text


def test_an_mturk_assignment_id_formula_reaches_the_approvals_csv_as_text(
    live_campaign, client, researcher
):
    Campaign.objects.filter(pk=live_campaign.pk).update(open_recruitment=True)
    join = f"/join/{live_campaign.recruit_token}/"
    client.get(join, {"workerId": "W1", "assignmentId": FORMULA, "hitId": "H1"})
    Client(REMOTE_ADDR="10.0.3.2").get(join, {"PROLIFIC_PID": "-2-3", "SESSION_ID": "s1"})
    client.force_login(researcher)
    url = reverse("admin:study_campaign_approvals", args=[live_campaign.pk])
    query = {"require_complete": "on", "max_gold_misses": 1, "min_median_seconds": 0}
    mturk = client.get(url, {**query, "platform": "mturk", "download": "1"}).content.decode()
    [row] = csv.DictReader(io.StringIO(mturk))
    assert row["AssignmentId"] == "'" + FORMULA and row["WorkerId"] == "W1"
    prolific = client.get(url, {**query, "platform": "prolific", "download": "1"})
    [row] = csv.DictReader(io.StringIO(prolific.content.decode()))
    assert row["participant_id"] == "'-2-3"


def test_the_admin_exports_neutralise_text_cells_and_keep_numbers(
    live_campaign, client, researcher, tmp_path
):
    SourceImage.objects.filter(pk=SourceImage.objects.first().pk).update(name=FORMULA)
    call_command("simulate_raters", live_campaign.name, "--raters", "5", "--seed", "3")
    client.force_login(researcher)
    base = f"/admin/study/campaign/{live_campaign.pk}/export"
    votes = pd.read_csv(io.BytesIO(client.get(f"{base}/votes/").content))
    assert "'" + FORMULA in set(votes["image"]) and FORMULA not in set(votes["image"])
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"{base}/report/").content))
    raw = frames.export_report(live_campaign, tmp_path, plots_enabled=False)
    negatives = 0
    for name in (n for n in archive.namelist() if n.endswith(".csv")):
        mine, theirs = pd.read_csv(archive.open(name)), pd.read_csv(raw[name])
        # study.analysis's numeric columns stay numbers, negative ones included (the values
        # of a second run may differ in the last bits, so the columns are compared, not them).
        numeric = list(theirs.select_dtypes("number"))
        assert list(mine.select_dtypes("number")) == numeric, name
        negatives += int((mine[numeric] < 0).sum().sum())
        text = mine.select_dtypes(exclude="number")
        formula = text.map(lambda v: isinstance(v, str) and v.startswith(("=", "@", "+")))
        assert not formula.any().any(), name
    assert negatives > 0
    zipped = pd.read_csv(archive.open("votes.csv"))
    assert "'" + FORMULA in set(zipped["image"])
    same = pd.read_csv(raw["votes.csv"])
    pd.testing.assert_series_equal(zipped["score"], same["score"], check_exact=True)


def test_staff_who_may_only_view_cannot_export_rater_links(
    live_campaign, client, django_user_model
):
    clerk = django_user_model.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(clerk)
    base = f"/admin/study/campaign/{live_campaign.pk}/export"
    assert client.get(f"{base}/links/").status_code == 404
    assert client.get(f"{base}/mos/").status_code == 200  # what they may read, they still get


def test_the_rater_links_export_is_a_csv_of_working_links(live_campaign, client, researcher):
    client.force_login(researcher)
    body = client.get(f"/admin/study/campaign/{live_campaign.pk}/export/links/").content
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 2 and all(r["url"].startswith("http://testserver/r/") for r in rows)


# Cookies ------------------------------------------------------------------------------------


def join_and_check_display(client, campaign, **extra):
    Campaign.objects.filter(pk=campaign.pk).update(open_recruitment=True)
    joined = client.get(f"/join/{campaign.recruit_token}/", {"PROLIFIC_PID": "P1"}, **extra)
    rater = campaign.raters.get(participant_id="P1")
    client.post(f"/r/{rater.token}/consent/", {"consent": "yes"}, **extra)
    checked = client.post(
        f"/r/{rater.token}/display/",
        {"viewport_width": 1920, "viewport_height": 1080, "dpr": 1},
        **extra,
    )
    [join_cookie] = [c for c in joined.cookies.values() if c.key.startswith("srmos-join-")]
    [display] = [c for c in checked.cookies.values() if c.key.startswith("srmos-display-")]
    return join_cookie, display


def test_the_join_and_display_cookies_are_secure_behind_tls(live_campaign, client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    cookies = join_and_check_display(client, live_campaign, HTTP_X_FORWARDED_PROTO="https")
    assert all(c["secure"] is True and c["httponly"] is True for c in cookies)


def test_the_join_and_display_cookies_work_over_plain_http_at_home(live_campaign, client):
    # The embedded default on http://127.0.0.1: a Secure cookie would never come back.
    cookies = join_and_check_display(client, live_campaign)
    assert all(not c["secure"] for c in cookies)


# Content-Security-Policy --------------------------------------------------------------------


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def test_every_rater_page_has_a_csp_and_no_inline_script(live_campaign, client):
    rater = live_campaign.raters.first()
    welcome = client.get(f"/r/{rater.token}/")
    client.post(f"/r/{rater.token}/consent/", {"consent": "yes"})
    display = client.get(f"/r/{rater.token}/")
    get_ready(client, rater)
    trial = client.get(f"/r/{rater.token}/")
    assert 'id="stimulus"' in trial.content.decode()
    for response in (welcome, display, trial):
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split(";")[1]
        assert not INLINE_SCRIPT.search(response.content.decode())
    assert "Content-Security-Policy" in client.get("/admin/login/")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_rater_page_runs_under_the_csp_in_a_browser(live_campaign, live_server, page):
    rater = live_campaign.raters.first()
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m))
    # The display check measures and submits by its script; the trial page's script (data-start)
    # shows the image and takes the key.
    start_session(page, live_server.url, rater)
    wait_for_image(page, 1)
    wait_until_ready(page)
    page.keyboard.press("4")
    wait_for_image(page, 2)
    assert violations == []
    assert rater.trials.order_by("position").first().score == 4


# check --deploy ------------------------------------------------------------------------------


def test_check_deploy_prints_only_warnings_the_deployment_docs_answer(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SRMOS_", "SECURE_"))},
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "srmos.example.org",
        "BEHIND_TLS_PROXY": "1",
        "SRMOS_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "",
    }
    result = run_python("manage.py", "check", "--deploy", env=env)
    printed = set(re.findall(r"\(security\.W\d+\)", result.stdout + result.stderr))
    docs = (ROOT / "docs" / "deployment.md").read_text()
    answered = set(re.findall(r"`security\.(W\d+)`", docs))
    assert {p[len("(security.") : -1] for p in printed} <= answered, printed
    assert "W004" in answered  # HSTS, left to the operator, is what the table explains
