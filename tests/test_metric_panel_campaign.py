"""The metric panel in a campaign: the workers compute the campaign's metrics with each
candidate; a metric added later is computed for the made candidates by a real worker without
making the images again; one that cannot be computed is missing with its reason; the report
carries the panel."""

import json
import time

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from study.generation.queue import queue_metrics
from study.models import Candidate
from study.reports.frames import export_report
from tests.conftest import generate_and_launch, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_workers_compute_the_campaigns_metrics_with_each_candidate(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    campaign = make_campaign()
    campaign.metrics = ["gmsd", "haarpsi", "ms_ssim", "lpips"]
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    for c in campaign.candidates.filter(status=Candidate.DONE).exclude(method__slug="hr"):
        assert set(c.metrics) == {"gmsd", "haarpsi"}, c.metric_notes
        assert 0 < c.metrics["gmsd"] < 0.5 and 0 < c.metrics["haarpsi"] < 1
        # 48x64 images are too small for MS-SSIM's five scales; LPIPS has no weight file here.
        assert "161" in c.metric_notes["ms_ssim"]
        assert "SRMOS_METRIC_WEIGHTS" in c.metric_notes["lpips"]
    hr = campaign.candidates.get(method__slug="hr", image__name=c.image.name)
    assert hr.metrics["gmsd"] == 0.0 and hr.metrics["haarpsi"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_a_metric_added_later_is_computed_by_a_worker_without_making_the_images_again(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, start_worker, media_root,
    settings,
):  # fmt: skip
    campaign = make_campaign()
    campaign.metrics = []
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    made = {c.pk: (c.file.name, c.finished_at, c.attempts) for c in campaign.candidates.all()}
    mtimes = {pk: (media_root / name).stat().st_mtime_ns for pk, (name, _, _) in made.items()}
    from config.celery import app

    app.conf.task_always_eager = False
    worker = start_worker(worker_env(settings.CELERY_BROKER_URL, media_root))
    campaign.metrics = ["fsim", "gmsd"]
    campaign.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert queue_metrics(campaign) == campaign.candidates.count()
    deadline = time.monotonic() + 120
    while any(c.missing_metrics() for c in campaign.candidates.all()):
        assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
        time.sleep(0.3)
    for c in campaign.candidates.all():
        assert set(c.metrics) == {"fsim", "gmsd"}
        assert (c.file.name, c.finished_at, c.attempts) == made[c.pk]
        assert (media_root / c.file.name).stat().st_mtime_ns == mtimes[c.pk]
    assert queue_metrics(campaign) == 0  # nothing missing: nothing queued


def test_the_report_carries_the_panel_and_says_which_metrics_are_missing(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, tmp_path
):
    campaign = make_campaign()
    campaign.metrics = ["gmsd", "haarpsi", "ms_ssim"]
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    from study.rating.simulated import add_simulated_raters

    add_simulated_raters(campaign, 6, seed=0)
    paths = export_report(campaign, tmp_path, plots_enabled=True)
    panel = pd.read_csv(paths["metric_panel.csv"])
    assert set(panel["metric"]) == {"psnr", "ssim", "gmsd", "haarpsi", "ms_ssim"}
    ms_ssim = panel[panel["metric"] == "ms_ssim"].iloc[0]
    assert ms_ssim["n"] == 0 or ms_ssim["note"]  # missing everywhere: said, not faked
    assert {"metric_comparison.csv", "metrics_missing.csv", "metric_panel.png"} <= set(paths)
    missing = pd.read_csv(paths["metrics_missing.csv"])
    assert set(missing["metric"]) == {"ms_ssim"} and missing["reason"].str.contains("161").all()
    manifest = json.loads(paths["manifest.json"].read_text())
    assert any("than PSNR" in s or "about equally" in s for s in manifest["metric_panel"])


def test_the_command_adds_a_metric_and_waits_for_it(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, capsys
):
    campaign = make_campaign()
    campaign.metrics = ["gmsd"]
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    from study.reports.page import report_version

    before = report_version(campaign)
    call_command("compute_metrics", campaign.name, "--add", "fsim,ms_ssim", "--wait")
    campaign.refresh_from_db()
    assert report_version(campaign) != before  # the live report recomputes its metric panel
    out = capsys.readouterr().out
    assert "9 candidates queued for gmsd, fsim, ms_ssim" in out
    assert (
        "fsim: 9/9" in out
        and "ms_ssim: 0/9 (missing: MS-SSIM: needs 161x161 pixels after cropping" in out
    )
    with pytest.raises(CommandError, match="unknown metric"):
        call_command("compute_metrics", campaign.name, "--add", "psnr-hvs")
