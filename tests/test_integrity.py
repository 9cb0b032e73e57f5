"""Study integrity on the server: the protocol's order, the serving window, the vote floor,
a frozen design, state-aware actions, and one definition of each quality check.

Each test here failed on main before issue 11 (the browser side is in test_browser_integrity).
"""

import json
import re
from datetime import timedelta

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from study.models import VOTE_FLOOR_MS, Campaign, Dataset, Method, Rater, Trial
from study.models.design import DesignFrozen
from study.models.order import retest_distances
from study.reports import frames
from tests.conftest import generate_and_launch, get_ready

pytestmark = pytest.mark.django_db


def post_vote(client, rater, position, score=3):
    return client.post(
        f"/r/{rater.token}/vote/",
        {"position": position, "score": score},
        HTTP_ACCEPT="application/json",
    )


def display(client, rater):
    return client.post(
        f"/r/{rater.token}/display/",
        {"viewport_width": 1920, "viewport_height": 1080, "dpr": 1},
    )


# The protocol: consent -> display check -> calibration -> trials -> done.


def test_a_vote_right_after_consent_is_refused_and_stores_nothing(live_campaign, client):
    rater = live_campaign.raters.first()
    client.post(f"/r/{rater.token}/consent/", {"consent": "yes"})
    assert post_vote(client, rater, 0).status_code == 409
    assert not Trial.objects.answered().exists()


def test_a_vote_for_an_image_never_handed_out_is_refused(live_campaign, client):
    rater = live_campaign.raters.first()
    client.post(f"/r/{rater.token}/consent/", {"consent": "yes"})
    display(client, rater)  # no page load: the first trial was never shown
    response = post_vote(client, rater, 0)
    assert response.status_code == 409 and "not been shown" in response.json()["error"]
    assert not Trial.objects.answered().exists()


def test_a_display_check_before_consent_is_refused_and_stores_nothing(live_campaign, client):
    rater = live_campaign.raters.first()
    response = display(client, rater)
    assert response.status_code == 409
    assert "consent first" in response.content.decode()
    rater.refresh_from_db()
    assert rater.display_checks == [] and rater.display_ok_at is None


def test_calibration_cannot_be_skipped_or_ended_out_of_order(calibrated_campaign, client):
    rater = calibrated_campaign.raters.first()
    # Before consent, and before the display check: refused, nothing stored.
    assert client.post(f"/r/{rater.token}/calibration/").status_code == 409
    client.post(f"/r/{rater.token}/consent/", {"consent": "yes"})
    assert client.post(f"/r/{rater.token}/calibration/").status_code == 409
    rater.refresh_from_db()
    assert rater.calibrated_at is None
    # A vote during calibration is refused too: the trials have not begun.
    display(client, rater)
    assert "calibration-item" in client.get(f"/r/{rater.token}/").content.decode()
    assert post_vote(client, rater, 0).status_code == 409
    assert client.post(f"/r/{rater.token}/calibration/").status_code == 302
    rater.refresh_from_db()
    assert rater.stage() == Rater.TRIALS
    assert not Trial.objects.answered().exists()


def test_a_closed_campaign_stores_no_display_check_or_calibration(calibrated_campaign, client):
    rater = calibrated_campaign.raters.first()
    calibrated_campaign.close()
    assert client.post(f"/r/{rater.token}/consent/", {"consent": "yes"}).status_code == 409
    assert display(client, rater).status_code == 409
    assert client.post(f"/r/{rater.token}/calibration/").status_code == 409
    rater.refresh_from_db()
    assert rater.consented_at is None and rater.calibrated_at is None
    assert rater.display_checks == [] and rater.display_ok_at is None


# The serving window: the current trial and the next, nothing else, only during the trials.


def test_only_the_current_and_next_images_are_served(live_campaign, client):
    rater = live_campaign.raters.first()
    url = f"/r/{rater.token}/t/{{}}.png"
    assert client.get(url.format(0)).status_code == 404  # before consent
    get_ready(client, rater)
    total = rater.trials.count()
    served = [p for p in range(total) if client.get(url.format(p)).status_code == 200]
    assert served == [0, 1]
    assert post_vote(client, rater, 0).status_code == 200
    served = [p for p in range(total) if client.get(url.format(p)).status_code == 200]
    assert served == [1, 2]  # the answered one is gone, the one after next not yet there


def test_calibration_images_are_served_only_during_calibration(calibrated_campaign, client):
    rater = calibrated_campaign.raters.first()
    (candidate, _), *_ = calibrated_campaign.calibration_trials()
    url = f"/r/{rater.token}/c/{candidate.public_id}.png"
    assert client.get(url).status_code == 404
    get_ready(client, rater)
    assert client.get(url).status_code == 200
    client.post(f"/r/{rater.token}/calibration/")
    assert client.get(url).status_code == 404


# The vote floor: the server's own guard against a vote for an image nobody saw.


def test_a_second_vote_within_the_floor_is_refused_and_then_taken(live_campaign, client):
    Campaign.objects.filter(pk=live_campaign.pk).update(vote_floor_ms=VOTE_FLOOR_MS)
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    Trial.objects.filter(rater=rater, position=0).update(
        shown_at=timezone.now() - timedelta(seconds=2)
    )
    assert post_vote(client, rater, 0).status_code == 200
    too_fast = post_vote(client, rater, 1)  # a double key press: the next image just arrived
    assert too_fast.status_code == 429
    body = too_fast.json()
    assert body["too_fast"] and 0 < body["retry_in_ms"] <= VOTE_FLOOR_MS and not body.get("resync")
    assert list(rater.trials.answered().values_list("position", flat=True)) == [0]
    Trial.objects.filter(rater=rater, position=1).update(
        shown_at=timezone.now() - timedelta(seconds=1)
    )
    assert post_vote(client, rater, 1).status_code == 200


# Retests far from their originals, and reported with their distance.


def test_retests_come_far_from_their_originals_and_the_report_says_how_far(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, tmp_path
):
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(retest_share=0.5)
    campaign.refresh_from_db()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    for rater in campaign.raters.all():
        order = list(rater.trials.order_by("position").values_list("candidate_id", "repeat"))
        gap = min(len(order) // 3, 10)
        distances = retest_distances(order)
        assert len(distances) == 4 and min(distances.values()) >= gap
    rater = campaign.raters.first()
    for trial in rater.trials.order_by("position"):
        trial.mark_shown()
        rater.cast_vote(trial.position, 3)
    frames.export_report(campaign, tmp_path)
    retest = pd.read_csv(tmp_path / "retest.csv")
    assert retest["distance_min"].iloc[0] >= min(rater.n_trials // 3, 10)


# Gold items: one definition, from the vote to the admin and every export.


def test_a_gold_miss_in_the_database_reaches_every_export(live_campaign, tmp_path):
    rater, other = live_campaign.raters.all()[:2]
    for r, hr_score in ((rater, 1), (other, 5)):
        for trial in r.trials.select_related("candidate__method").order_by("position"):
            trial.mark_shown()
            slug = trial.candidate.method.slug
            score = {"hr": hr_score, "nearest": 1}.get(slug, 3)
            r.cast_vote(trial.position, score)
    rater.refresh_from_db()
    assert any(flag.startswith("gold-miss") for flag in rater.qc["flags"])
    frames.export_report(live_campaign, tmp_path)
    raters = pd.read_csv(tmp_path / "raters.csv").set_index("rater")
    assert raters.loc[f"r{rater.pk}", "n_gold"] > 0 and raters.loc[f"r{rater.pk}", "gold_failed"]
    assert not raters.loc[f"r{other.pk}", "gold_failed"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["n_gold_votes"] > 0 and manifest["n_gold_misses"] == 3
    votes = pd.read_csv(tmp_path / "votes.csv")
    assert set(votes["expected"].dropna()) == {">=4", "<=2"}
    # The rater who missed gold items is left out of the screened MOS.
    assert f"r{rater.pk}" in manifest["excluded_in_mos_screened"]
    screened = pd.read_csv(tmp_path / "mos_screened.csv")
    assert (screened["n_screened"] < screened["n_all"]).all()


def test_straight_lining_means_the_same_live_and_in_the_report(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, image_folder, tmp_path
):
    from study.analysis import STRAIGHTLINE_MIN_VOTES, straightlining

    campaign = generate_and_launch(make_campaign(), django_capture_on_commit_callbacks)
    rater = campaign.raters.first()
    for trial in rater.trials.order_by("position"):
        trial.mark_shown()
        rater.cast_vote(trial.position, 3)  # 9 identical votes: fewer than the minimum
    rater.refresh_from_db()
    assert rater.n_trials < STRAIGHTLINE_MIN_VOTES
    assert "straight-lining" not in rater.qc["flags"]
    report = straightlining(frames.votes_frame(campaign), campaign.straightline_min_variance)
    assert not report["straightliner"].any()


# A frozen design.


def test_the_model_refuses_a_design_change_once_candidates_exist(live_campaign):
    live_campaign.kernel = "pil-bicubic"
    with pytest.raises(DesignFrozen, match="'kernel' cannot change.*Clone the campaign"):
        live_campaign.save()
    live_campaign.refresh_from_db()
    for change in (
        lambda: live_campaign.methods.add(Method.objects.get(slug="lanczos")),
        lambda: live_campaign.datasets.clear(),
        lambda: Method.objects.get(slug="lanczos").campaigns.add(live_campaign),
    ):
        with pytest.raises(DesignFrozen), transaction.atomic():
            change()
    assert live_campaign.methods.count() == 3 and live_campaign.datasets.count() == 1
    live_campaign.description = "not the design"
    live_campaign.save()  # everything else stays editable


def test_an_unknown_kernel_is_refused_when_saved(dataset):
    with pytest.raises(ValueError, match="unknown kernel 'matlab-bicubc'.*matlab-bicubic"):
        Campaign.objects.create(name="typo", kernel="matlab-bicubc")
    assert not Campaign.objects.filter(name="typo").exists()


def change_form(client, campaign):
    """The change form's current values, as the admin page would post them back."""
    page = client.get(reverse("admin:study_campaign_change", args=[campaign.pk]))
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if hasattr(value, "all"):
            data[name] = [str(o.pk) for o in value.all()]
        elif isinstance(value, list):
            data[name] = [str(getattr(v, "pk", v)) for v in value]
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = str(value)
    return data


def test_a_tampered_admin_post_cannot_change_a_frozen_design(live_campaign, client, researcher):
    client.force_login(researcher)
    url = reverse("admin:study_campaign_change", args=[live_campaign.pk])
    for field, value in (
        ("lr_source", "dataset"),
        ("kernel", "pil-bicubic"),
        ("seed", "99"),
        ("scale", "2"),
        ("methods", [str(Method.objects.get(slug="lanczos").pk)]),
    ):
        data = {**change_form(client, live_campaign), field: value, "description": "x"}
        response = client.post(url, data)
        html = response.content.decode()
        assert response.status_code == 200, field  # the form again, not a redirect
        assert f"&#x27;{field}&#x27; cannot change" in html and "Clone the campaign" in html
    live_campaign.refresh_from_db()
    assert (live_campaign.lr_source, live_campaign.kernel, live_campaign.seed) == (
        "kernel",
        "matlab-bicubic",
        7,
    )
    assert live_campaign.description == ""
    # An honest post of the same page changes what may change.
    data = {**change_form(client, live_campaign), "description": "pilot study"}
    assert client.post(url, data).status_code == 302
    live_campaign.refresh_from_db()
    assert live_campaign.description == "pilot study"


def test_the_kernel_is_a_choice_in_the_admin(dataset, client, researcher):
    client.force_login(researcher)
    page = client.get(reverse("admin:study_campaign_add")).content.decode()
    assert re.search(r'<select name="kernel"', page)
    assert '<option value="pil-bicubic">' in page


def test_imported_results_record_their_lr_and_a_mixed_campaign_warns(
    make_campaign, image_folder, client, researcher, tmp_path, eager_celery,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    import_theirs(tmp_path, lr_input="pil-bicubic")
    assert Method.objects.get(slug="theirs").lr_input == "pil-bicubic"
    dataset = Dataset.objects.get(name="tiny")
    client.force_login(researcher)
    data = {
        "name": "mixed",
        "datasets": [str(dataset.pk)],
        "methods": [str(m.pk) for m in Method.objects.filter(slug__in=["bicubic", "theirs"])],
        "scale": "4",
        "kernel": "matlab-bicubic",
        "lr_source": "kernel",
        **{
            k: v
            for k, v in change_form(client, make_campaign(name="template")).items()
            if k not in ("name", "datasets", "methods", "scale", "kernel", "lr_source")
        },
    }
    response = client.post(reverse("admin:study_campaign_add"), data, follow=True)
    assert "LR inputs differ. theirs" in response.content.decode()
    campaign = Campaign.objects.get(name="mixed")
    Campaign.objects.filter(pk=campaign.pk).update(vote_floor_ms=0)  # votes cast at once below
    campaign.refresh_from_db()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    rater = campaign.raters.first()
    for trial in rater.trials.order_by("position"):
        trial.mark_shown()
        rater.cast_vote(trial.position, 3)
    frames.export_report(campaign, tmp_path / "report")
    lr = frames.votes_frame(campaign).groupby("method")["lr"].first().to_dict()
    assert lr == {
        "bicubic": "HR degraded x4 with matlab-bicubic",
        "theirs": "HR degraded x4 with pil-bicubic (imported results)",
    }
    meta = (tmp_path / "report" / "campaign.txt").read_text()
    assert "theirs: HR degraded x4 with pil-bicubic (imported results)" in meta
    assert "warnings:" in meta and "LR inputs differ. theirs" in meta


def test_import_results_refuses_an_unknown_lr_provenance(dataset, image_folder):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command(
            "import_results",
            "tiny",
            "theirs",
            str(image_folder(3, name="theirs")),
            "--lr-input",
            "x",
        )


def import_theirs(tmp_path, lr_input):
    """Results made elsewhere (copies of the HR images) as the imported method `theirs`."""
    from study.datasets.importing import read_folder
    from study.datasets.results import import_results

    folder = tmp_path / "theirs"
    folder.mkdir()
    for image in Dataset.objects.get(name="tiny").images.all():
        (folder / f"{image.name}.png").write_bytes(image.file.read())
    import_results("tiny", "theirs", read_folder(folder), lr_input=lr_input)
    return folder


# State-aware actions.


def run_action(client, action, campaign, **extra):
    return client.post(
        reverse("admin:study_campaign_changelist"),
        {"action": action, "_selected_action": [campaign.pk], **extra},
        follow=True,
    )


def test_actions_on_a_closed_campaign_say_why_and_what_to_do(live_campaign, client, researcher):
    client.force_login(researcher)
    live_campaign.close()
    for action, expected in (
        ("generate_candidates", "closed: its candidates are final"),
        ("retry_failed", "closed: its candidates are final"),
        ("launch", "closed: its votes are final. Clone it to run the same design again."),
        ("cancel_generation", "nothing is being generated"),
    ):
        html = run_action(client, action, live_campaign).content.decode()
        assert expected in html and ("Clone" in html or action == "cancel_generation"), action
        assert "0 candidates queued" not in html
    assert live_campaign.candidates.filter(status="queued").count() == 0


def test_close_asks_for_confirmation_and_says_what_it_did(live_campaign, client, researcher):
    client.force_login(researcher)
    confirm = run_action(client, "close", live_campaign).content.decode()
    assert "Yes, close" in confirm and "Every vote stored so far is kept" in confirm
    live_campaign.refresh_from_db()
    assert live_campaign.status == Campaign.LIVE  # asking changed nothing
    done = run_action(client, "close", live_campaign, confirmed="yes").content.decode()
    assert (
        "Pilot is closed: 0 of 2 rater sessions completed by people; the report holds no votes."
        in done
    )
    live_campaign.refresh_from_db()
    assert live_campaign.status == Campaign.CLOSED


def test_clone_makes_a_draft_with_the_same_design(live_campaign, client, researcher):
    client.force_login(researcher)
    form = run_action(client, "clone", live_campaign).content.decode()
    assert 'value="pilot-copy"' in form and "Votes and rater links are not copied" in form
    taken = run_action(client, "clone", live_campaign, confirmed="yes", name="pilot", seed="")
    assert "exists already" in taken.content.decode()
    html = run_action(
        client, "clone", live_campaign, confirmed="yes", name="pilot-2", seed="11"
    ).content.decode()
    copy = Campaign.objects.get(name="pilot-2")
    assert "cloned as" in html and copy.status == Campaign.DRAFT
    assert set(copy.methods.all()) == set(live_campaign.methods.all())
    assert (copy.kernel, copy.seed, copy.scale) == (live_campaign.kernel, 11, 4)
    assert copy.recruit_token != live_campaign.recruit_token
    copy.kernel = "pil-bicubic"
    copy.save()  # no candidates yet: the design is open


def test_the_progress_table_renders_on_the_campaign_page(live_campaign, client, researcher):
    client.force_login(researcher)
    page = client.get(reverse("admin:study_campaign_change", args=[live_campaign.pk]))
    html = page.content.decode()
    assert '<table id="progress">' in html and "<th>done</th><td>9</td>" in html


# Cookies name no database row.


def test_the_join_cookie_names_no_database_id(live_campaign, client):
    Campaign.objects.filter(pk=live_campaign.pk).update(open_recruitment=True)
    response = client.get(f"/join/{live_campaign.recruit_token}/?PROLIFIC_PID=P1")
    rater = live_campaign.raters.get(participant_id="P1")
    names = [name for name in response.cookies if name.startswith("srmos-join")]
    assert names and all(not name.endswith(f"-{rater.pk}") for name in names)
    assert all(re.fullmatch(r"srmos-join-[0-9a-f]{12}", name) for name in names)
    # The participant gets back in with it.
    again = client.get(f"/join/{live_campaign.recruit_token}/?PROLIFIC_PID=P1")
    assert again.status_code == 302 and rater.token in again["Location"]


def test_a_vote_in_flight_when_the_study_closes_is_not_stored(live_campaign, client):
    from study.models import VoteRejected

    rater = live_campaign.raters.first()
    get_ready(client, rater)
    rater = Rater.objects.select_related("campaign").get(pk=rater.pk)  # read while live
    Campaign.objects.filter(pk=live_campaign.pk).update(status=Campaign.CLOSED)  # Close commits
    with pytest.raises(VoteRejected, match="ended"):
        rater.cast_vote(0, 3)
    assert not Trial.objects.answered().exists()


def test_straight_lining_uses_the_campaigns_threshold_live_and_in_the_report(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, tmp_path
):
    campaign = make_campaign(methods=("nearest", "bicubic", "lanczos", "hr"))
    Campaign.objects.filter(pk=campaign.pk).update(straightline_min_variance=0.5)
    campaign.refresh_from_db()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    rater = campaign.raters.first()
    for i, trial in enumerate(rater.trials.order_by("position")):
        trial.mark_shown()
        rater.cast_vote(trial.position, 4 if i % 4 == 0 else 3)  # variance about 0.2, 12 votes
    rater.refresh_from_db()
    assert "straight-lining" in rater.qc["flags"]
    frames.export_report(campaign, tmp_path)
    raters = pd.read_csv(tmp_path / "raters.csv").set_index("rater")
    assert raters.loc[f"r{rater.pk}", "straightliner"]


def test_a_campaign_with_a_kernel_no_longer_known_can_still_be_closed_and_cloned(live_campaign):
    Campaign.objects.filter(pk=live_campaign.pk).update(kernel="matlab-bicubc")
    campaign = Campaign.objects.get(pk=live_campaign.pk)
    campaign.description = "the typo predates the check"
    campaign.save()
    campaign.close()
    copy = campaign.clone("fixed")
    assert copy.kernel == "matlab-bicubic"


def test_a_methods_lr_provenance_cannot_change_once_it_has_candidates(live_campaign, tmp_path):
    folder = import_theirs(tmp_path, lr_input="pil-bicubic")
    method = Method.objects.get(slug="theirs")
    clone = live_campaign.clone("with-theirs")
    clone.methods.add(method)
    from study.generation.queue import start_generation

    start_generation(clone)  # eager mode is off: the candidates are queued, they exist
    from study.datasets.importing import read_folder
    from study.datasets.results import import_results

    with pytest.raises(ValueError, match="cannot change now"):
        import_results("tiny", "theirs", read_folder(folder), lr_input="dataset")
    method.lr_input = "dataset"
    with pytest.raises(ValueError, match="'lr_input' cannot change"):
        method.save()
    assert Method.objects.get(slug="theirs").lr_input == "pil-bicubic"
