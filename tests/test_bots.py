"""A script in a crowd study: it reads file sizes and hashes, claims any viewing time, and makes up
participant ids. None of it passes quality control or yields more sessions."""

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from study.models import Campaign, Trial
from tests.conftest import generate_and_launch, get_ready

pytestmark = pytest.mark.django_db


def bot_session(client, rater, answer):
    """Walk a session as a script would: fetch every image of the trial, answer from what the
    bytes say (``answer(images, memory)``), vote at once. Returns the images' lengths by trial."""
    memory, lengths = {}, []
    for _ in range(rater.n_trials):
        page = client.get(f"/r/{rater.token}/").content.decode()
        trial = rater.current_trial()
        if trial is None:
            break
        urls = [f"/r/{rater.token}/t/{trial.position}.png"]
        if "partner" in page and trial.partner_id:
            urls.append(f"/r/{rater.token}/b/{trial.position}.png")
        if 'id="ref-image"' in page:
            urls.append(f"/r/{rater.token}/ref/{trial.position}.png")
        images = [client.get(u).content for u in urls]
        lengths.append([len(b) for b in images])
        score = answer(images, memory)
        memory[hashlib.sha256(images[0]).hexdigest()] = score
        client.post(f"/r/{rater.token}/vote/", {"position": trial.position, "score": score})
    rater.refresh_from_db()
    return lengths


def by_size(images, memory):
    """ACR/DCR: a larger file is a better image; a repeated file gets its earlier answer."""
    known = memory.get(hashlib.sha256(images[0]).hexdigest())
    if known is not None:
        return known
    return 5 if len(images[0]) > 60_000 else 1 if len(images[0]) < 20_000 else 3


def larger_file(images, memory):
    """Paired comparison: pick the larger file."""
    return 1 if len(images[0]) >= len(images[1]) else 2


@pytest.fixture
def campaign_of(make_campaign, eager_celery, django_capture_on_commit_callbacks):
    def make(protocol, **fields):
        campaign = make_campaign(
            name=f"bots-{protocol}", methods=("nearest", "bicubic", "srcnn", "hr")
        )
        Campaign.objects.filter(pk=campaign.pk).update(
            protocol=protocol, retest_share=0.5, **fields
        )
        campaign.refresh_from_db()
        return generate_and_launch(campaign, django_capture_on_commit_callbacks)

    return make


@pytest.mark.parametrize(
    "protocol, answer", [("acr", by_size), ("dcr", by_size), ("pc", larger_file)]
)
def test_a_bot_reading_sizes_and_hashes_learns_nothing_and_is_flagged(
    protocol, answer, campaign_of, client
):
    campaign = campaign_of(protocol)
    rater = campaign.raters.links().first()
    get_ready(client, rater)
    lengths = bot_session(client, rater, answer)
    # Every image a trial shows, every version of every source image: one length per image.
    by_image = {}
    for trial, sizes in zip(rater.trials.order_by("position"), lengths, strict=True):
        by_image.setdefault(trial.candidate.image_id, set()).update(sizes)
    assert all(len(sizes) == 1 for sizes in by_image.values())
    assert rater.completed_at is not None and rater.qc["flags"], rater.qc


def test_a_retest_is_served_with_other_bytes_and_the_same_pixels(campaign_of, client):
    import io

    import numpy as np
    from PIL import Image

    campaign = campaign_of("acr")
    rater = campaign.raters.links().first()
    get_ready(client, rater)
    trial = rater.current_trial()
    first = client.get(f"/r/{rater.token}/t/{trial.position}.png").content
    again = client.get(f"/r/{rater.token}/t/{trial.position}.png").content
    assert first != again and len(first) == len(again)
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(first))), np.asarray(Image.open(io.BytesIO(again)))
    )


def test_viewing_time_is_the_servers_not_the_pages(campaign_of, client):
    campaign = campaign_of("acr", min_view_ms=2000, rushed_sessions="withhold")
    rater = campaign.raters.links().first()
    get_ready(client, rater)
    for _ in range(rater.n_trials):
        client.get(f"/r/{rater.token}/")
        position = rater.current_trial().position
        client.post(
            f"/r/{rater.token}/vote/",
            {"position": position, "score": 3, "duration_ms": 5000},  # a claim, not a fact
        )
    votes = Trial.objects.filter(rater=rater)
    assert all(t.duration_ms == 5000 and t.server_ms < 2000 for t in votes)
    assert all("too-fast" in t.flags for t in votes)
    rater.refresh_from_db()
    assert rater.qc["rushed"] and "rushed" in rater.qc["flags"]
    done = client.get(f"/r/{rater.token}/done/").content.decode()
    assert 'id="code-withheld"' in done and campaign.completion_code not in done


def test_a_session_that_took_its_time_gets_its_code(campaign_of, client):
    campaign = campaign_of("acr", min_view_ms=2000, rushed_sessions="withhold")
    rater = campaign.raters.links().first()
    get_ready(client, rater)
    for _ in range(rater.n_trials):
        client.get(f"/r/{rater.token}/")
        trial = rater.current_trial()
        # As if the rater looked for 2.5 s: the hand-out moved back in time.
        Trial.objects.filter(pk=trial.pk).update(shown_at=timezone.now() - timedelta(seconds=2.5))
        client.post(f"/r/{rater.token}/vote/", {"position": trial.position, "score": 4})
    rater.refresh_from_db()
    assert "rushed" not in rater.qc["flags"]
    assert campaign.completion_code in client.get(f"/r/{rater.token}/done/").content.decode()


def test_one_person_gets_one_session_however_the_id_is_typed(campaign_of):
    campaign = campaign_of("acr", open_recruitment=True)
    join = f"/join/{campaign.recruit_token}/"
    first = Client(REMOTE_ADDR="10.9.0.1").get(join, {"participant": "ATTACKER00"})
    assert first.status_code == 302
    again = Client(REMOTE_ADDR="10.9.0.2").get(join, {"participant": "attacker00."})
    assert again.status_code == 403  # the same person, known by another browser
    assert campaign.raters.exclude(participant_id="").count() == 1


def test_one_browser_cannot_make_up_ids_for_more_sessions(campaign_of):
    campaign = campaign_of("acr", open_recruitment=True)
    join = f"/join/{campaign.recruit_token}/"
    browser = Client(REMOTE_ADDR="10.9.1.1", HTTP_USER_AGENT="bot/1.0")
    replies = [browser.get(join, {"participant": f"MADEUP{i:02d}"}) for i in range(20)]
    assert [r.status_code for r in replies].count(302) == 1
    assert "This browser has a session already" in replies[-1].content.decode()
    # Without the cookie (a script that drops it), the address and browser still count.
    fresh = Client(REMOTE_ADDR="10.9.1.1", HTTP_USER_AGENT="bot/1.0")
    assert fresh.get(join, {"participant": "MADEUP99"}).status_code == 403
    assert campaign.raters.exclude(participant_id="").count() == 1
    # A lab that shares computers raises the limit.
    Campaign.objects.filter(pk=campaign.pk).update(sessions_per_client=3)
    assert fresh.get(join, {"participant": "LAB2"}).status_code == 302


def test_an_id_of_punctuation_alone_is_refused(campaign_of):
    campaign = campaign_of("acr", open_recruitment=True)
    reply = Client(REMOTE_ADDR="10.9.2.1").get(
        f"/join/{campaign.recruit_token}/", {"PROLIFIC_PID": "..", "SESSION_ID": "x"}
    )
    assert reply.status_code == 400 and not campaign.raters.exclude(participant_id="").exists()
