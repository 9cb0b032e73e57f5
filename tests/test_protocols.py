"""The protocol seam: every protocol in one object, a fourth one added as one module."""

import io
import re
import zipfile

import pandas as pd
import pytest
from django.db import IntegrityError, transaction

from study.analysis import mos_table, write_report
from study.models import Campaign, Method, Rater, Trial, VoteInvalid, consent_for_display
from study.models.protocol import Answer, Protocol, protocol_choices, register, unregister
from study.protocols.acr import ACR_PROTOCOL
from study.reports import frames
from tests.conftest import generate_and_launch, get_ready

pytestmark = pytest.mark.django_db


class ThreeLevels(Protocol):
    """A toy protocol written only against the seam: one image at a time, worse/same/better
    than the rater's expectation, keys Q/W/E. It borrows the ACR session design and frame."""

    code = "toy3"
    label = "Toy: three levels"
    task = "say whether each one looks worse, as good as or better than you expect"
    question = "Worse, as expected, or better?"
    instructions = "Three answers only."
    calibration_preview = "the three levels"

    def answers(self):
        return [
            Answer(1, "Worse", ("q",)),
            Answer(2, "As expected", ("w",)),
            Answer(3, "Better", ("e",)),
        ]

    def design_session(self, rater):
        specs = ACR_PROTOCOL.design_session(rater)
        return [{**s, "expected": ""} for s in specs]

    def quality(self, rater):
        return {"n_votes": rater.trials.answered().count(), "flags": []}

    def votes(self, campaign, people_only=False):
        return ACR_PROTOCOL.votes(campaign, people_only)

    def write_report(self, campaign, frame, out_dir, **options):
        return write_report(frame, out_dir, plots_enabled=False, downloads=True)

    def summary_table(self, campaign, frame, method_order=None):
        return mos_table(frame, method_order=method_order)


@pytest.fixture
def toy_protocol():
    protocol = register(ThreeLevels())
    yield protocol
    unregister(protocol.code)


def vote(client, rater, score, key="position"):
    position = rater.current_trial().position
    return client.post(f"/r/{rater.token}/vote/", {key: position, "score": score})


def test_a_toy_protocol_registered_in_one_module_runs_a_whole_campaign(
    toy_protocol, make_campaign, eager_celery, django_capture_on_commit_callbacks, client
):
    assert ("toy3", "Toy: three levels") in protocol_choices()
    campaign = make_campaign(name="toy")
    campaign.protocol = "toy3"
    campaign.full_clean()  # the field's choices follow the registry
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    rater = campaign.raters.first()
    welcome = client.get(f"/r/{rater.token}/").content.decode()
    assert "say whether each one looks worse" in welcome and "As expected" in welcome
    assert "rate the quality" not in welcome
    get_ready(client, rater)
    page = client.get(f"/r/{rater.token}/").content.decode()
    assert "Worse, as expected, or better?" in page and "&quot;q&quot;: &quot;1&quot;" in page
    response = vote(client, rater, 4)
    assert response.status_code == 400 and "from 1 (worse) to 3 (better)" in response.text
    assert not Trial.objects.answered().exists()
    for i in range(rater.n_trials):
        client.get(f"/r/{rater.token}/")  # the page hands the trial out
        assert vote(client, rater, 1 + i % 3).status_code == 302
    rater.refresh_from_db()
    assert rater.completed_at is not None and rater.qc == {"n_votes": rater.n_trials, "flags": []}
    votes = pd.read_csv(io.StringIO(frames.votes_csv(campaign)))
    assert len(votes) == rater.n_trials and set(votes["score"]) == {1, 2, 3}
    assert votes["rater"].iloc[0] == f"r{rater.pk}"
    names = zipfile.ZipFile(io.BytesIO(frames.report_zip(campaign))).namelist()
    assert "mos.csv" in names and "campaign.txt" in names


def test_an_unknown_protocol_is_refused_by_name(make_campaign):
    campaign = make_campaign(name="odd")
    campaign.protocol = "mushra"
    assert any("no protocol 'mushra'" in p for p in campaign.design_problems([]))


def test_the_consent_says_what_each_protocol_asks(make_campaign):
    campaign = make_campaign(name="words")
    texts = {}
    for code in (Campaign.ACR, Campaign.DCR, Campaign.PC):
        campaign.protocol = code
        texts[code] = consent_for_display(campaign)
    assert "rate the quality of each one" in texts[Campaign.ACR]
    assert "rate the quality" not in texts[Campaign.DCR] + texts[Campaign.PC]
    assert "compared with its reference" in texts[Campaign.DCR]
    assert "choose" in texts[Campaign.PC] and "looks better" in texts[Campaign.PC]
    campaign.consent_text = "My own words: rate the quality of each one."
    assert consent_for_display(campaign) == campaign.consent_text  # the researcher's stay


@pytest.mark.parametrize(
    "protocol, methods, problem",
    [
        (Campaign.PC, ["bicubic"], "at least two methods"),
        (Campaign.DCR, ["nearest", "bicubic"], "add the HR reference"),
    ],
)
def test_the_admin_form_refuses_a_design_its_protocol_cannot_run(
    protocol, methods, problem, client, researcher, dataset, builtin_methods
):
    client.force_login(researcher)
    data = {
        "name": "refused",
        "datasets": [dataset.pk],
        "methods": list(Method.objects.filter(slug__in=methods).values_list("pk", flat=True)),
        "scale": 4,
        "kernel": "matlab-bicubic",
        "lr_source": "kernel",
        "seed": 0,
        "protocol": protocol,
        "pair_design": "full",
        "pairs_per_image": 3,
    }
    response = client.post("/admin/study/campaign/add/", data)
    assert response.status_code == 200 and problem in response.content.decode()
    assert not Campaign.objects.filter(name="refused").exists()


def test_a_dcr_campaigns_means_are_named_dmos(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from study.rating.simulated import add_simulated_raters

    campaign = make_campaign(name="dcr-names")
    campaign.protocol = Campaign.DCR
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    add_simulated_raters(campaign, 3, bad=0)
    table = pd.read_csv(io.StringIO(frames.mos_csv(campaign)))
    assert "dmos" in table.columns and "mos" not in table.columns


def test_a_comparison_can_only_be_a_or_b(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    campaign = make_campaign(name="pairs")
    campaign.protocol = Campaign.PC
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    rater = campaign.raters.first()
    with pytest.raises(VoteInvalid, match="Choose A"):
        rater.record_votes({0: 3})
    trial = rater.trials.get(position=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Trial.objects.filter(pk=trial.pk).update(score=3)
    assert rater.record_votes({0: 2}) == 1


def test_simulated_sessions_vote_through_the_same_rules(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from study.rating.simulated import add_simulated_raters

    campaign = generate_and_launch(make_campaign(name="sim"), django_capture_on_commit_callbacks)
    add_simulated_raters(campaign, 2, bad=0)
    simulated = Rater.objects.simulated()
    assert simulated.count() == 2 and not Rater.objects.people().filter(trials__score=1).exists()
    gold = Trial.objects.filter(rater__in=simulated, expected=">=4").exclude(score__gte=4)
    assert all("gold-miss" in t.flags for t in gold)  # the flags cast_vote would store
    assert all(r.completed_at and r.qc for r in simulated)
    campaign.close()
    with pytest.raises(Exception, match="ended"):
        simulated.first().record_votes({0: 3})


def test_simulated_dcr_raters_rate_the_impairment_not_the_quality(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from study.rating.simulated import add_simulated_raters

    campaign = make_campaign(name="dcr-sim")
    campaign.protocol = Campaign.DCR
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    add_simulated_raters(campaign, 12, bad=0, seed=1)
    dmos = pd.read_csv(io.StringIO(frames.mos_csv(campaign))).set_index("method")["dmos"]
    # The reference beside itself is imperceptibly impaired (the ACR pilot's HR sits at 4.3).
    assert dmos["hr"] > 4.5 and dmos["nearest"] < dmos["bicubic"] < dmos["hr"]


@pytest.mark.parametrize("protocol", [Campaign.ACR, Campaign.PC])
def test_a_pilot_gives_no_verdict_on_a_method_the_simulator_does_not_know(
    protocol, make_campaign, eager_celery, django_capture_on_commit_callbacks, tmp_path
):
    import json

    from study.rating.simulated import add_simulated_raters, caveat

    campaign = make_campaign(name=f"unknown-{protocol}", methods=("nearest", "lanczos", "hr"))
    campaign.protocol = protocol
    campaign.save()
    generate_and_launch(campaign, django_capture_on_commit_callbacks)
    add_simulated_raters(campaign, 8, bad=0)
    assert "lanczos" in caveat(campaign)
    frames.export_report(campaign, tmp_path, plots_enabled=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    about = [v for v in manifest["verdicts"] if "lanczos" in v]
    assert about and all("no verdict" in v.lower() for v in about)
    assert manifest["simulated"] is True
    table = "jod_differences.csv" if protocol == Campaign.PC else "significance.csv"
    rows = pd.read_csv(tmp_path / table)
    with_it = rows[(rows["method_a"] == "lanczos") | (rows["method_b"] == "lanczos")]
    assert with_it["p_holm"].isna().all() and not with_it["significant_holm"].any()


def test_calibration_examples_are_captioned_by_quality_in_every_protocol():
    from study.protocols.dcr import DCR_PROTOCOL
    from study.protocols.pc import PC_PROTOCOL

    captions = {p.code: (p.calibration_label(1), p.calibration_label(5)) for p in
                (ACR_PROTOCOL, DCR_PROTOCOL, PC_PROTOCOL)}  # fmt: skip
    assert captions == {
        "acr": ("Bad", "Excellent"),
        "dcr": ("Very annoying", "Imperceptible"),
        "pc": ("Bad", "Excellent"),  # never "A looks better": an anchor is no answer
    }


def test_a_second_batch_of_simulated_raters_with_the_same_seed_draws_new_raters(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from study.rating.simulated import add_simulated_raters

    campaign = generate_and_launch(
        make_campaign(name="batches"), django_capture_on_commit_callbacks
    )
    add_simulated_raters(campaign, 3, bad=0, seed=0)
    add_simulated_raters(campaign, 3, bad=0, seed=0)
    sessions = [
        tuple(r.trials.order_by("candidate_id", "repeat").values_list("score", flat=True))
        for r in Rater.objects.simulated().order_by("pk")
    ]
    assert len(sessions) == 6 and len(set(sessions)) == 6  # no session is another's copy


def test_a_campaign_made_in_the_admin_starts_with_the_documented_metric_panel(client, researcher):
    from study.models.metrics import default_metrics

    client.force_login(researcher)
    page = client.get("/admin/study/campaign/add/").content.decode()
    for name in default_metrics():
        assert f'value="{name}"' in page
        assert re.search(rf'<input[^>]*value="{name}"[^>]*checked', page)
