"""The scriptable thin path: create_campaign, generate_candidates, launch, export_report."""

import json

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from study.models import Campaign

pytestmark = pytest.mark.django_db


def write_spec(tmp_path, **spec):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_it_runs_the_thin_path_from_the_command_line(dataset, tmp_path, eager_celery, capsys, django_capture_on_commit_callbacks):
    spec = write_spec(tmp_path, name="cli", datasets=["tiny"], methods=["nearest", "bicubic", "hr"], scale=4, seed=3, rater_links=2)
    call_command("create_campaign", spec)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("generate_candidates", "cli", "--wait", "--timeout", "30")
    call_command("launch", "cli")
    out = capsys.readouterr().out
    campaign = Campaign.objects.get(name="cli")
    assert campaign.status == Campaign.LIVE and campaign.raters.count() == 2
    for rater in campaign.raters.all():
        assert f"http://127.0.0.1:8000/r/{rater.token}/" in out
    for i, rater in enumerate(campaign.raters.all()):
        for trial in rater.trials.all():
            rater.record_vote(trial.position, 1 + (trial.position + i) % 5)
    call_command("export_report", "cli", str(tmp_path / "report"))
    votes = pd.read_csv(tmp_path / "report" / "votes.csv")
    assert len(votes) == 18 and set(votes["method"]) == {"nearest", "bicubic", "hr"}
    mos = pd.read_csv(tmp_path / "report" / "mos.csv")
    assert set(mos.columns) >= {"dataset", "method", "n", "mos", "std", "ci95_low", "ci95_high"}
    expected = votes.groupby("method")["score"].mean()
    for row in mos.itertuples():
        assert row.n == 6 and row.mos == pytest.approx(expected[row.method])
        assert row.ci95_low < row.mos < row.ci95_high


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"datasets": ["tiny"], "methods": ["nearest"]}, "'name' is required"),
        ({"name": "x", "datasets": ["nope"], "methods": ["nearest"]}, "unknown dataset"),
        ({"name": "x", "datasets": ["tiny"], "methods": ["magic"]}, "unknown method"),
        ({"name": "x", "datasets": ["tiny"], "methods": ["nearest"], "scale": 3}, "scale must be 2, 4 or 8"),
        ({"name": "x", "datasets": ["tiny"], "methods": ["nearest"], "colour": "red"}, "unknown field"),
    ],
)
def test_it_refuses_a_bad_spec(dataset, tmp_path, spec, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_campaign", write_spec(tmp_path, **spec))
    assert not Campaign.objects.exists()


def test_it_names_an_unknown_campaign(dataset):
    with pytest.raises(CommandError, match="no campaign 'ghost'"):
        call_command("launch", "ghost")


def test_export_report_without_votes_says_so(live_campaign, tmp_path):
    with pytest.raises(CommandError, match="has no votes yet"):
        call_command("export_report", live_campaign.name, str(tmp_path / "out"))
