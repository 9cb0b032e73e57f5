"""Paired comparison: two versions of the same image, "which looks better?", walked in headless
Chromium side by side and one at a time; the designs (full, random, active); the JOD report."""

import time

import pandas as pd
import pytest

from study.models import Campaign, Rater, Trial
from study.protocols.pc import PC_PROTOCOL
from study.reports.frames import export_report
from tests.conftest import (
    generate_and_launch,
    get_ready,
    screenshot,
    start_session,
    wait_for_image,
    wait_until_ready,
)

pytestmark = pytest.mark.django_db(transaction=True)


def pc_campaign(make_campaign, capture, design=Campaign.FULL, methods=("nearest", "bicubic", "hr")):
    campaign = make_campaign(methods=methods)
    campaign.protocol = Campaign.PC
    campaign.pair_design = design
    campaign.pairs_per_image = 2
    campaign.save()
    return generate_and_launch(campaign, capture)


@pytest.fixture
def paired(make_campaign, eager_celery, django_capture_on_commit_callbacks):
    return pc_campaign(make_campaign, django_capture_on_commit_callbacks)


def shown_width(page, element_id):
    return page.evaluate(
        "id => { const i = document.getElementById(id); const r = i.getBoundingClientRect();"
        " return [i.naturalWidth, r.width * devicePixelRatio, r.left]; }",
        element_id,
    )


def answered(rater, n):
    for _ in range(50):
        if Trial.objects.filter(rater=rater).answered().count() == n:
            return
        time.sleep(0.1)


@pytest.mark.browser
@pytest.mark.slow
def test_a_rater_compares_pairs_side_by_side_with_keys_and_buttons(paired, live_server, browser):
    rater = paired.raters.first()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    start_session(page, live_server.url, rater)
    n = rater.trials.count()
    assert n == 3 * 3  # three images, every pair of three methods
    choices = []
    for i in range(n):
        wait_for_image(page, i + 1)
        wait_until_ready(page)
        (wa, sa, left_a), (wb, sb, left_b) = (
            shown_width(page, "stimulus"),
            shown_width(page, "partner"),
        )
        assert wa == pytest.approx(sa) and wb == pytest.approx(sb) and left_a < left_b
        if i == 0:
            screenshot(page, "pair-side-by-side")
        key = ["ArrowLeft", "2", "1", "ArrowRight"][i % 4]
        if i == n - 1:
            page.get_by_role("button", name="A looks better").click()
            choices.append(1)
        else:
            page.keyboard.press(key)
            choices.append(1 if key in ("1", "ArrowLeft") else 2)
    page.wait_for_selector("text=Thank you!")
    answered(rater, n)
    trials = list(rater.trials.order_by("position"))
    assert [t.score for t in trials] == choices
    assert all(t.partner_id and t.partner.image_id == t.candidate.image_id for t in trials)
    assert len({frozenset((t.candidate_id, t.partner_id)) for t in trials}) == n
    rater.refresh_from_db()
    assert rater.display_checks[-1]["pair_layout"] == "side-by-side"


@pytest.mark.browser
@pytest.mark.slow
def test_a_narrow_window_shows_one_version_at_a_time_and_asks_to_see_both(
    paired, live_server, browser
):
    rater = paired.raters.first()
    # 48x64 images: two do not fit across 100 CSS pixels at 1:1, one does.
    page = browser.new_context(viewport={"width": 100, "height": 700}).new_page()
    start_session(page, live_server.url, rater)
    wait_for_image(page, 1)
    assert page.is_visible("#stimulus") and not page.is_visible("#partner")
    page.wait_for_timeout(300)
    assert page.is_disabled("#vote-form button[value='1']")  # B not seen yet
    page.keyboard.press("2")
    assert rater.trials.answered().count() == 0
    page.keyboard.press("t")
    assert page.is_visible("#partner") and not page.is_visible("#stimulus")
    wait_until_ready(page)
    screenshot(page, "pair-toggle")
    page.keyboard.press("2")
    wait_for_image(page, 2)
    assert not page.is_visible("#partner")  # the next pair starts with A again
    answered(rater, 1)
    assert rater.trials.get(position=0).score == 2
    rater.refresh_from_db()
    assert rater.display_checks[-1]["pair_layout"] == "toggle"


def test_a_comparison_accepts_only_a_or_b_and_serves_b_within_the_window(paired, client):
    rater = paired.raters.first()
    get_ready(client, rater)
    assert client.get(f"/r/{rater.token}/b/0.png")["Content-Type"] == "image/png"
    assert client.get(f"/r/{rater.token}/b/1.png").status_code == 200
    assert client.get(f"/r/{rater.token}/b/5.png").status_code == 404
    reply = client.post(
        f"/r/{rater.token}/vote/", {"position": 0, "score": 4}, HTTP_ACCEPT="application/json"
    )
    assert reply.status_code == 400 and "Choose A (1) or B (2)" in reply.json()["error"]
    assert not rater.trials.answered().exists()


def answer_all(campaign, prefer=("hr", "bicubic", "nearest")):
    """Every session answered by a consistent rater: the method earlier in `prefer` wins."""
    from django.utils import timezone

    for rater in campaign.raters.all():
        for t in rater.trials.select_related("candidate__method", "partner__method"):
            a, b = t.candidate.method.slug, t.partner.method.slug
            t.score = 1 if prefer.index(a) < prefer.index(b) else 2
            t.answered_at = timezone.now()
            t.save(update_fields=["score", "answered_at"])


def test_the_designs_and_the_jod_report(make_campaign, eager_celery, django_capture_on_commit_callbacks, tmp_path):  # fmt: skip
    capture = django_capture_on_commit_callbacks
    rnd = pc_campaign(make_campaign, capture, Campaign.RANDOM)
    assert {r.trials.count() for r in rnd.raters.all()} == {3 * 2}  # two pairs per image
    full = pc_campaign(lambda **kw: make_campaign(**kw, name="full"), capture)
    answer_all(full)
    votes = PC_PROTOCOL.votes(full)
    assert len(votes) == 2 * 9 and set(votes["choice"]) <= {"hr", "bicubic", "nearest"}
    paths = export_report(full, tmp_path)
    from study.reports.frames import mos_csv, votes_csv

    header = votes_csv(full).splitlines()[0]
    assert header.startswith("rater,dataset,image,method_a,method_b,choice")
    assert mos_csv(full).splitlines()[0].startswith("dataset,method,jod")
    jod = pd.read_csv(paths["jod.csv"]).set_index("method")["jod"]
    assert jod["hr"] > jod["bicubic"] > jod["nearest"]
    assert "protocol: Paired comparison" in (tmp_path / "campaign.txt").read_text()
    assert {"jod_differences.csv", "rater_consistency.csv", "agreement.csv"} <= set(paths)
    assert {"jod_ci.png", "jod_ci.svg"} <= set(paths)
    from study.reports.frames import draw_report_figures

    assert set(draw_report_figures(full, tmp_path / "page")) == {"jod_ci.svg"}
    # With the MOS of an ACR campaign of the same images and methods: MOS against JOD.
    from study.rating.simulated import add_simulated_raters

    acr = generate_and_launch(make_campaign(name="acr"), capture)
    add_simulated_raters(acr, 4, seed=1)
    full.mos_campaign = acr
    full.save()
    paths = export_report(full, tmp_path / "with-mos")
    both = pd.read_csv(paths["mos_vs_jod.csv"])
    assert set(both["method"]) == {"nearest", "bicubic", "hr"}


def better(trial, prefer=("hr", "bicubic", "nearest")):
    a, b = trial.candidate.method.slug, trial.partner.method.slug
    return 1 if prefer.index(a) < prefer.index(b) else 2


def test_active_pairs_are_chosen_when_needed_from_the_votes_so_far(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, client
):
    import zlib

    from django.test import Client

    from study.analysis.active_sampling import next_pairs, state_from_votes

    campaign = pc_campaign(make_campaign, django_capture_on_commit_callbacks, Campaign.ACTIVE)
    first, second = campaign.raters.order_by("pk")[:2]
    assert first.trials.filter(pair_pending=True).count() == first.trials.count() == 3 * 2
    get_ready(client, first)  # shows the first pair and prefetches the second: both chosen
    assert list(first.trials.order_by("position").values_list("pair_pending", flat=True)[:3]) == [
        False,
        False,
        True,
    ]
    while first.trials.pending().exists():
        trial = first.trials.pending().select_related("candidate__method", "partner__method")[0]
        assert not trial.pair_pending and trial.partner.image_id == trial.candidate.image_id
        reply = client.post(
            f"/r/{first.token}/vote/",
            {"position": trial.position, "score": better(trial)},
            HTTP_ACCEPT="application/json",
        )
        assert reply.status_code == 200, reply.content
    votes = PC_PROTOCOL.votes(campaign)
    assert len(votes) == 6
    # The next rater's first pair is the most informative one given those six votes.
    other = Client()
    get_ready(other, second)
    trial = second.trials.select_related("candidate__image__dataset", "candidate__method",
                                         "partner__method").get(position=0)  # fmt: skip
    image = trial.candidate.image
    expected = next_pairs(
        state_from_votes(votes, images=[(image.dataset.name, image.name)]),
        n=1,
        seed=zlib.crc32(f"{campaign.seed}:{second.seed}".encode()),
        rater=str(second.pk),
        images=[(image.dataset.name, image.name)],
    ).iloc[0]
    chosen = {trial.candidate.method.slug, trial.partner.method.slug}
    assert chosen == {expected["method_a"], expected["method_b"]}


def test_a_pair_session_is_checked_for_side_bias_and_contradicting_retests():
    from study.analysis.pair_checks import pair_session_quality

    one_key = [(i, i + 100, 1, "rating", 900) for i in range(12)]
    qc = pair_session_quality(one_key)
    assert qc["share_a"] == 1.0 and qc["flags"] == ["side-bias"]
    varied = [(i, i + 100, 1 + i % 2, "rating", 900) for i in range(12)]
    # Retests show the pair swapped: the same winner again agrees, the other one contradicts.
    same = [(i + 100, i, 2 - i % 2, "retest", 900) for i in range(4)]
    assert pair_session_quality(varied + same)["retest_agreement"] == 1.0
    other = [(i + 100, i, 1 + i % 2, "retest", 900) for i in range(4)]
    qc = pair_session_quality(varied + other)
    assert qc["retest_agreement"] == 0.0 and qc["flags"] == ["retest-unreliable"]
    assert pair_session_quality(varied, [{"went_on_anyway": True}])["flags"] == [
        "display-too-small"
    ]


def test_simulated_raters_answer_a_paired_campaign_for_a_pilot_report(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, tmp_path
):
    from study.rating.simulated import add_simulated_raters

    for design in (Campaign.FULL, Campaign.ACTIVE):
        campaign = pc_campaign(
            lambda design=design, **kw: make_campaign(**kw, name=f"sim-{design}"),
            django_capture_on_commit_callbacks,
            design,
        )
        Campaign.objects.filter(pk=campaign.pk).update(retest_share=0.5)
        campaign.refresh_from_db()
        add_simulated_raters(campaign, 6, bad=0, seed=3)
        votes = PC_PROTOCOL.votes(campaign)
        assert set(votes["rater_platform"]) == {"simulated"}
        for rater in campaign.raters.filter(platform="simulated"):
            trials = list(rater.trials.all())
            pairs = {}
            for t in trials:
                if not t.repeat:
                    pairs.setdefault(t.candidate.image_id, []).append(
                        {t.candidate_id, t.partner_id}
                    )
            # A rater never judges the same pair of an image twice (the votes so far grow)...
            assert all(len(p) == len({frozenset(x) for x in p}) for p in pairs.values())
            # ...and a retest shows its original's pair.
            firsts = [{t.candidate_id, t.partner_id} for t in trials if not t.repeat]
            assert all({t.candidate_id, t.partner_id} in firsts for t in trials if t.repeat)
        assert len(votes) and set(votes["choice"]) <= {"nearest", "bicubic", "hr"}
        assert not Trial.objects.filter(rater__campaign=campaign, pair_pending=True,
                                        score__isnull=False).exists()  # fmt: skip
        jod = pd.read_csv(export_report(campaign, tmp_path / design)["jod.csv"])
        assert jod.set_index("method")["jod"].idxmax() == "hr"


def test_a_crowd_participant_joins_a_paired_campaign_and_resumes_on_another_device(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from django.test import Client

    campaign = pc_campaign(make_campaign, django_capture_on_commit_callbacks, Campaign.RANDOM)
    Campaign.objects.filter(pk=campaign.pk).update(open_recruitment=True)
    laptop = Client()
    reply = laptop.get(f"/join/{campaign.recruit_token}/?PROLIFIC_PID=P7&SESSION_ID=s7")
    rater = Rater.objects.get(campaign=campaign, participant_id="P7")
    assert reply.status_code == 302 and rater.trials.count() == 3 * 2
    assert all(t.partner_id for t in rater.trials.all())
    get_ready(laptop, rater)
    for position in (0, 1):
        reply = laptop.post(
            f"/r/{rater.token}/vote/", {"position": position, "score": 2},
            HTTP_ACCEPT="application/json",
        )  # fmt: skip
        assert reply.status_code == 200
    phone = Client()  # the same link later, on a phone: consent kept, display checked again
    get_ready(phone, rater, viewport=(390, 844), dpr=3.0)
    page = phone.get(rater.get_absolute_url()).content.decode()
    assert "Image 3 of 6" in page and f"/r/{rater.token}/b/2.png" in page
    rater.refresh_from_db()
    assert rater.display_checks[-1]["pair_layout"] == "side-by-side"  # 64-px images fit twice


def test_the_live_report_of_a_paired_campaign_shows_the_jod_scale(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, client, researcher
):
    from study.rating.simulated import add_simulated_raters

    campaign = pc_campaign(make_campaign, django_capture_on_commit_callbacks)
    add_simulated_raters(campaign, 5, bad=0, seed=4)
    client.force_login(researcher)
    html = client.get(f"/admin/study/campaign/{campaign.pk}/report/").content.decode()
    assert "JOD scale from the paired comparisons (Thurstone Case V)" in html
    assert "paired comparisons from 5 raters" in html
    assert "Rater consistency (circular triads" in html
    assert html.count("data:image/svg+xml;base64,") == 1  # the JOD figure
    assert "Paired Wilcoxon" not in html  # no ACR table for comparisons


def test_the_welcome_page_and_the_session_estimate_follow_the_protocol(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, client
):
    from study.models import session_estimate

    campaign = pc_campaign(make_campaign, django_capture_on_commit_callbacks)
    rater = campaign.raters.first()
    page = client.get(rater.get_absolute_url()).content.decode()
    assert "two versions, A and B, of the same image" in page and "B looks better" in page
    assert "Excellent" not in page
    assert session_estimate(campaign)[1] == rater.trials.count() == 9
    one = make_campaign(methods=("bicubic",), name="one-method")
    one.protocol = Campaign.PC
    one.save()
    from study.generation.queue import start_generation

    with pytest.raises(ValueError, match="at least two methods"):
        start_generation(one)
