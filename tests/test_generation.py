import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from study.models import Campaign, Candidate

pytestmark = pytest.mark.django_db


def generate(campaign, capture):
    with capture(execute=True):
        queued = campaign.start_generation()
    campaign.refresh_from_db()
    return queued


def test_it_generates_every_candidate_with_metrics(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    campaign = make_campaign()
    assert generate(campaign, django_capture_on_commit_callbacks) == 9
    assert campaign.status == Campaign.READY
    assert campaign.progress() == {"queued": 0, "running": 0, "done": 9, "failed": 0}
    for candidate in campaign.candidates.select_related("method", "image"):
        with default_storage.open(candidate.file.name) as fh:
            image = Image.open(fh)
            assert image.size == (64, 48)
            assert not image.info.get("dpi") and not getattr(image, "text", {})
        assert candidate.public_id in candidate.file.name
        assert candidate.method.slug not in candidate.file.name
        if candidate.method.slug == "hr":
            assert candidate.psnr == float("inf") and candidate.ssim == pytest.approx(1.0)
        else:
            assert 15 < candidate.psnr < 40 and 0 < candidate.ssim < 1
    psnr = {c.method.slug: c.psnr for c in campaign.candidates.filter(image__name="img0")}
    assert psnr["bicubic"] > psnr["nearest"]


def test_it_does_nothing_when_run_again(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    campaign = make_campaign()
    generate(campaign, django_capture_on_commit_callbacks)
    before = list(campaign.candidates.values_list("pk", "file", "finished_at"))
    assert generate(campaign, django_capture_on_commit_callbacks) == 0
    assert list(campaign.candidates.values_list("pk", "file", "finished_at")) == before


def test_it_records_a_failure_and_retries_only_it(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    from study import generation

    campaign = make_campaign(methods=("nearest", "bicubic"))
    real = generation.upscale

    def flaky(method, hr, scale, kernel):
        if method.slug == "bicubic":
            raise RuntimeError("GPU fell off the bus")
        return real(method, hr, scale, kernel)

    monkeypatch.setattr(generation, "upscale", flaky)
    generate(campaign, django_capture_on_commit_callbacks)
    failed = campaign.candidates.filter(status=Candidate.FAILED)
    assert failed.count() == 3
    assert "GPU fell off the bus" in failed.first().error
    assert campaign.status == Campaign.GENERATING
    done_before = dict(campaign.candidates.done().values_list("pk", "finished_at"))

    monkeypatch.setattr(generation, "upscale", real)
    with django_capture_on_commit_callbacks(execute=True):
        assert campaign.retry_failed() == 3
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    assert (
        dict(campaign.candidates.filter(pk__in=done_before).values_list("pk", "finished_at"))
        == done_before
    )


def test_a_task_delivered_twice_makes_the_candidate_once(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from study.tasks import generate_candidate

    campaign = make_campaign(methods=("bicubic",))
    generate(campaign, django_capture_on_commit_callbacks)
    candidate = campaign.candidates.first()
    generate_candidate(candidate.pk)
    candidate.refresh_from_db()
    assert candidate.attempts == 1


def test_a_launched_campaign_cannot_be_generated_again(live_campaign):
    assert live_campaign.start_generation() == 0


def test_it_refuses_to_launch_before_generation(make_campaign):
    campaign = make_campaign()
    with pytest.raises(ValueError, match="only a campaign whose candidates are all generated"):
        campaign.launch()


def test_trial_order_never_repeats_an_image_in_a_row():
    from study.models import trial_order

    items = [(pk, pk % 5) for pk in range(40)]
    for seed in range(20):
        order = trial_order(items, seed)
        assert sorted(order) == list(range(40))
        images = [pk % 5 for pk in order]
        assert all(a != b for a, b in zip(images, images[1:], strict=False))
    assert trial_order(items, 3) == trial_order(items, 3)
    assert trial_order(items, 3) != trial_order(items, 4)


def test_it_serves_pixels_equal_to_the_stored_candidate(live_campaign, client):
    rater = live_campaign.raters.first()
    trial = rater.current_trial()
    response = client.get(f"/r/{rater.token}/img/{trial.candidate.public_id}")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "Content-Disposition" not in response
    import io

    served = np.asarray(Image.open(io.BytesIO(response.content)))
    with default_storage.open(trial.candidate.file.name) as fh:
        assert np.array_equal(served, np.asarray(Image.open(fh)))
