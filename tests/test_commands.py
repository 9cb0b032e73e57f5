"""The scriptable thin path: create_campaign, generate_candidates, launch, export_report."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from study.models import Campaign
from tests.conftest import ROOT, run_python, worker_env


def write_spec(tmp_path, **spec):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def manage(env, *args):
    result = run_python("manage.py", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_runs_the_thin_path_from_the_command_line(
    builtin_methods, tmp_path, start_worker, media_root, settings, image_folder
):
    env = worker_env(settings.CELERY_BROKER_URL, media_root)
    start_worker(env)
    out = manage(env, "import_dataset", "tiny", str(image_folder(3)))
    assert "3 images imported into tiny" in out
    spec = write_spec(
        tmp_path,
        name="cli",
        datasets=["tiny"],
        methods=["nearest", "bicubic", "hr"],
        scale=4,
        seed=3,
        rater_links=2,
        vote_floor_ms=0,  # the votes below are cast at once, as no person could
    )
    assert "created campaign cli" in manage(env, "create_campaign", spec)
    out = manage(env, "generate_candidates", "cli", "--wait", "--timeout", "120")
    assert "9 candidates queued" in out and "cli is ready" in out
    out = manage(env, "launch", "cli")
    campaign = Campaign.objects.get(name="cli")
    assert campaign.status == Campaign.LIVE and campaign.raters.count() == 2
    for rater in campaign.raters.all():
        assert f"http://127.0.0.1:8000/r/{rater.token}/" in out
    for i, rater in enumerate(campaign.raters.all()):
        for trial in rater.trials.all():
            trial.mark_shown()  # the page handed it out
            rater.cast_vote(trial.position, 1 + (trial.position + i) % 5)
    manage(env, "export_report", "cli", str(tmp_path / "report"))
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
        (
            {"name": "x", "datasets": ["tiny"], "methods": ["nearest"], "scale": 3},
            "scale must be 2, 4 or 8",
        ),
        (
            {"name": "x", "datasets": ["tiny"], "methods": ["nearest"], "colour": "red"},
            "unknown field",
        ),
        (
            {"name": "x", "datasets": ["tiny"], "methods": ["nearest"], "seed": "seven"},
            "seed: .*must be an integer",
        ),
        (
            {"name": "x", "datasets": ["tiny"], "methods": ["nearest"], "display_policy": "ask"},
            "display_policy: Value 'ask' is not a valid choice",
        ),
        (
            {"name": "x", "datasets": ["tiny"], "methods": ["nearest"], "kernel": "bicubc"},
            "kernel: Value 'bicubc' is not a valid choice",
        ),
        (
            {
                "name": "x",
                "datasets": ["tiny"],
                "methods": ["nearest"],
                "completion_url": "ftp://x",
            },
            "completion_url: Enter a valid URL",
        ),
        (
            {
                "name": "x",
                "datasets": ["tiny"],
                "methods": ["nearest"],
                "calibration_dataset": "no",
            },
            "unknown calibration dataset",
        ),
    ],
)
@pytest.mark.django_db
def test_it_refuses_a_bad_spec(dataset, tmp_path, spec, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_campaign", write_spec(tmp_path, **spec))
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_a_spec_sets_the_session_and_quality_control(dataset, image_folder, tmp_path):
    from study.datasets.importing import import_folder

    import_folder("calib", image_folder(2, name="calib"), is_calibration=True)
    spec = write_spec(
        tmp_path,
        name="full",
        datasets=["tiny"],
        methods=["nearest", "hr"],
        calibration_dataset="calib",
        calibration_images=2,
        retest_share=0.1,
        min_view_ms=1500,
        break_every=50,
        display_policy="refuse",
        open_recruitment=True,
        completion_url="https://app.prolific.com/submissions/complete?cc={code}",
    )
    call_command("create_campaign", spec)
    campaign = Campaign.objects.get(name="full")
    assert campaign.calibration_dataset.name == "calib" and campaign.retest_share == 0.1
    assert campaign.display_policy == "refuse" and campaign.open_recruitment
    assert campaign.min_view_ms == 1500 and campaign.break_every == 50


@pytest.mark.django_db
def test_it_names_an_unknown_campaign(dataset):
    with pytest.raises(CommandError, match="no campaign 'ghost'"):
        call_command("launch", "ghost")


@pytest.mark.django_db
def test_export_report_without_votes_says_so(live_campaign, tmp_path):
    with pytest.raises(CommandError, match="has no votes yet"):
        call_command("export_report", live_campaign.name, str(tmp_path / "out"))


@pytest.mark.django_db
def test_close_ends_a_live_campaign(live_campaign, capsys):
    call_command("close", live_campaign.name)
    live_campaign.refresh_from_db()
    assert live_campaign.status == Campaign.CLOSED and live_campaign.closed_at is not None
    out = capsys.readouterr().out
    assert "pilot is closed: 0 of 2 rater sessions completed by people; the report holds" in out
    with pytest.raises(CommandError, match="is closed: its votes are final"):
        call_command("close", live_campaign.name)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_waiting_recovers_candidates_whose_worker_died(
    builtin_methods, tmp_path, start_worker, media_root, settings, image_folder
):
    """A worker killed mid-task leaves its candidate running and, on a broker without
    redelivery (the embedded one), the queued messages it had taken are gone too."""
    from datetime import timedelta

    from django.utils import timezone

    from config.celery import app
    from study.models import Candidate

    env = worker_env(settings.CELERY_BROKER_URL, media_root)
    env["SRMOS_GENERATION_LEASE"] = "2"  # seconds: the recovery waits a lease or three
    manage(env, "import_dataset", "tiny", str(image_folder(2)))
    spec = write_spec(tmp_path, name="lost", datasets=["tiny"], methods=["nearest", "bicubic"])
    manage(env, "create_campaign", spec)
    waiting = subprocess.Popen(
        [sys.executable, "manage.py", "generate_candidates", "lost", "--wait", "--timeout", "120"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "4 candidates queued" in waiting.stdout.readline()
        app.control.purge()  # every message lost, as if a killed worker had prefetched them
        victim = Campaign.objects.get(name="lost").candidates.order_by("pk").first()
        now = timezone.now()
        Candidate.objects.filter(pk=victim.pk).update(
            status=Candidate.RUNNING,
            started_at=now - timedelta(minutes=5),
            lease_expires=now - timedelta(minutes=1),
        )
        start_worker(env)
        out, err = waiting.communicate(timeout=150)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert "1 candidate(s) lost their worker: queued them again" in err
    assert "lost is ready" in out
    assert Campaign.objects.get(name="lost").candidates.filter(status="done").count() == 4


# The campaign's own words (Campaign.refusal): the commands say what the admin's page says.


@pytest.mark.django_db
def test_the_commands_refuse_a_draft_in_the_campaign_s_words(make_campaign):
    draft = make_campaign()
    for command, action in (
        ("launch", "launch"),
        ("simulate_raters", "simulate"),
        ("close", "close"),
    ):
        with pytest.raises(CommandError) as refused:
            call_command(command, draft.name)
        assert str(refused.value) == draft.refusal(action) != ""
    assert draft.refusal("launch") == (
        "Campaign pilot is a draft: its candidates are not generated yet. Press Generate, then "
        "Launch once they all are made."
    )


@pytest.mark.django_db
def test_a_ready_or_live_campaign_says_when_a_command_has_nothing_to_do(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, capsys
):
    from study.generation.queue import start_generation

    campaign = make_campaign()
    with django_capture_on_commit_callbacks(execute=True):
        start_generation(campaign)
    call_command("generate_candidates", campaign.name)
    out = capsys.readouterr().out
    assert out.strip() == "Nothing to generate: all candidates are made. Launch the campaign."
    call_command("launch", campaign.name)
    call_command("launch", campaign.name)
    out = capsys.readouterr().out
    assert "pilot is live with its 2 rater links; raise its 'rater links' setting" in out


@pytest.mark.django_db
def test_close_counts_what_the_report_holds_and_then_every_command_says_closed(
    live_campaign, capsys
):
    call_command("simulate_raters", live_campaign.name, "--raters", "3", "--bad", "0")
    assert "(seed 0)" in capsys.readouterr().out
    # A repeated seed is named before the batch is added; the default is an unused one.
    name = live_campaign.name
    call_command("simulate_raters", name, "--raters", "1", "--bad", "0", "--seed", "0")
    said = capsys.readouterr()
    assert "Seed 0 was used already by batch 1 (3 raters) of pilot" in said.err
    assert "draws different raters, not copies" in said.err
    call_command("simulate_raters", name, "--raters", "1", "--bad", "0")
    said = capsys.readouterr()
    assert "(seed 1)" in said.out and "was used already" not in said.err
    call_command("close", name)
    assert (
        "pilot is closed: 0 of 2 rater sessions completed by people; the report holds 45 votes, "
        "45 of them simulated (5 simulated raters). Its links now say the study has ended."
        in capsys.readouterr().out
    )
    closed = "Campaign pilot is closed: its votes are final. Clone it to run the same design again."
    for command in ("launch", "simulate_raters", "close"):
        with pytest.raises(CommandError) as refused:
            call_command(command, name)
        assert str(refused.value) == closed, command
