"""simulate_raters and the campaign report: CLI, zip download and the live admin page."""

import io
import zipfile

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from study.models import Rater, Trial

pytestmark = pytest.mark.django_db


def test_simulated_raters_vote_on_every_trial(live_campaign, capsys):
    call_command(
        "simulate_raters", live_campaign.name, "--raters", "6", "--bad", "2", "--seed", "1"
    )
    simulated = Rater.objects.filter(campaign=live_campaign, platform="simulated")
    assert simulated.count() == 6
    assert not Trial.objects.filter(rater__in=simulated, score__isnull=True).exists()
    assert all(r.completed_at and "n" in r.qc for r in simulated)
    assert "added 6 simulated raters (2 bad)" in capsys.readouterr().out
    hr = Trial.objects.filter(rater__in=simulated, candidate__method__slug="hr")
    nn = Trial.objects.filter(rater__in=simulated, candidate__method__slug="nearest")
    good = [r for r in simulated if "(good)" in r.label]
    assert len(good) == 4
    mean = lambda qs: sum(qs.values_list("score", flat=True)) / qs.count()  # noqa: E731
    assert mean(hr.filter(rater__in=good)) > mean(nn.filter(rater__in=good)) + 2


def test_simulate_raters_needs_a_live_campaign(make_campaign):
    campaign = make_campaign()
    with pytest.raises(CommandError, match="is a draft.*Press Generate, then Launch"):
        call_command("simulate_raters", campaign.name)


def test_the_report_page_shows_tables_and_plots(live_campaign, client, researcher):
    call_command("simulate_raters", live_campaign.name, "--raters", "8", "--seed", "2")
    client.force_login(researcher)
    page = client.get(f"/admin/study/campaign/{live_campaign.pk}/report/")
    html = page.content.decode()
    assert page.status_code == 200
    for title in [
        "Mean score per method and dataset (MOS; DMOS for DCR)",
        "Differences between methods, over raters and images",
        "Rater screening",
        "Reliability",
        "Which metric agrees with people (ITU-T P.1401)",
    ]:
        assert title in html
    # A pilot says so, and each pair of methods gets its verdict in words.
    assert "SIMULATED: 8 of 8 raters are simulated" in html
    assert '<ul id="verdicts">' in html and "over raters and images; p" in html
    # MOS with CIs, score distribution, MOS against PSNR and the metric panel.
    assert html.count("data:image/svg+xml;base64,") == 4
    # Live campaign: the page follows incoming votes in place (no reload, scroll kept).
    assert 'http-equiv="refresh"' not in html and 'data-live="yes"' in html
    assert "72 rating votes from 8 raters" in html
    call_command(
        "simulate_raters", live_campaign.name, "--raters", "2", "--bad", "0", "--seed", "4"
    )
    html = client.get(f"/admin/study/campaign/{live_campaign.pk}/report/").content.decode()
    assert "90 rating votes from 10 raters" in html  # a cached report never hides new votes


def test_the_report_page_says_when_there_are_no_votes(live_campaign, client, researcher):
    client.force_login(researcher)
    html = client.get(f"/admin/study/campaign/{live_campaign.pk}/report/").content.decode()
    assert "has no votes yet" in html


def test_the_report_zip_holds_the_analysis(live_campaign, client, researcher):
    call_command("simulate_raters", live_campaign.name, "--raters", "5", "--seed", "3")
    client.force_login(researcher)
    response = client.get(f"/admin/study/campaign/{live_campaign.pk}/export/report/")
    assert response["Content-Type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    assert {
        "votes.csv",
        "mos.csv",
        "significance.csv",
        "raters.csv",
        "table2.csv",
        "campaign.txt",
        "mos_ci.png",
    } <= names
    mos = pd.read_csv(zipfile.ZipFile(io.BytesIO(response.content)).open("mos.csv"))
    assert mos["n"].sum() == 5 * 9
    meta = zipfile.ZipFile(io.BytesIO(response.content)).read("campaign.txt").decode()
    assert "kernel: matlab-bicubic" in meta
    votes = pd.read_csv(zipfile.ZipFile(io.BytesIO(response.content)).open("votes.csv"))
    # Per method: the HR reference had no LR input at all.
    assert dict(zip(votes["method"], votes["lr"], strict=True)) == {
        "nearest": "HR degraded x4 with matlab-bicubic",
        "bicubic": "HR degraded x4 with matlab-bicubic",
        "hr": "none (the HR original)",
    }
    assert set(votes["rater_platform"]) == {"simulated"}
    mos_export = client.get(f"/admin/study/campaign/{live_campaign.pk}/export/mos/")
    assert set(pd.read_csv(io.BytesIO(mos_export.content))["lr"]) == {
        "HR degraded x4 with matlab-bicubic",
        "none (the HR original)",
    }


def test_simulate_raters_will_not_mix_into_real_votes_unasked(live_campaign):
    person = live_campaign.raters.exclude(platform="simulated").first()
    trial = person.trials.order_by("position").first()
    type(trial).objects.filter(pk=trial.pk).update(score=4, answered_at=timezone.now())
    with pytest.raises(CommandError, match="real rater.*--mix-with-real-votes"):
        call_command("simulate_raters", live_campaign.name, "--raters", "2")
    assert not live_campaign.raters.filter(platform="simulated").exists()
    call_command("simulate_raters", live_campaign.name, "--raters", "2", "--mix-with-real-votes")
    assert live_campaign.raters.filter(platform="simulated").count() == 2
