import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from study.generation.queue import cancel_generation, retry_failed, start_generation
from study.models import Campaign, Candidate, Method
from tests.conftest import get_ready

pytestmark = pytest.mark.django_db


def generate(campaign, capture):
    with capture(execute=True):
        queued = start_generation(campaign)
    campaign.refresh_from_db()
    return queued


def test_it_generates_every_candidate_with_metrics(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    campaign = make_campaign()
    assert generate(campaign, django_capture_on_commit_callbacks) == 9
    assert campaign.status == Campaign.READY
    assert campaign.progress() == {
        "queued": 0,
        "running": 0,
        "done": 9,
        "failed": 0,
        "cancelled": 0,
    }
    for candidate in campaign.candidates.select_related("method", "image"):
        with default_storage.open(candidate.file.name) as fh:
            image = Image.open(fh)
            assert image.size == (64, 48)
            assert not image.info.get("dpi") and not getattr(image, "text", {})
        # The path names no method (a random public id could contain "hr" by chance).
        assert candidate.file.name == f"candidates/{campaign.pk}/{candidate.public_id}.png"
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
    from study.generation import render as generation

    campaign = make_campaign(methods=("nearest", "bicubic"))
    real = generation.upscale_all

    def flaky(method, jobs, scale):
        if method.slug == "bicubic":
            raise RuntimeError("GPU fell off the bus")
        return real(method, jobs, scale)

    monkeypatch.setattr(generation, "upscale_all", flaky)
    generate(campaign, django_capture_on_commit_callbacks)
    failed = campaign.candidates.filter(status=Candidate.FAILED)
    assert failed.count() == 3
    assert "GPU fell off the bus" in failed.first().error
    assert campaign.status == Campaign.GENERATING
    done_before = dict(campaign.candidates.done().values_list("pk", "finished_at"))

    monkeypatch.setattr(generation, "upscale_all", real)
    with django_capture_on_commit_callbacks(execute=True):
        assert retry_failed(campaign) == 3
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    assert (
        dict(campaign.candidates.filter(pk__in=done_before).values_list("pk", "finished_at"))
        == done_before
    )


def test_a_task_delivered_twice_makes_the_candidate_once(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from study.generation.tasks import generate_candidate

    campaign = make_campaign(methods=("bicubic",))
    generate(campaign, django_capture_on_commit_callbacks)
    candidate = campaign.candidates.first()
    generate_candidate(candidate.pk)
    candidate.refresh_from_db()
    assert candidate.attempts == 1


def test_a_launched_campaign_cannot_be_generated_again(live_campaign):
    with pytest.raises(ValueError, match="live: its candidates are final.*Clone"):
        start_generation(live_campaign)
    assert live_campaign.candidates.filter(status="queued").count() == 0


def test_it_refuses_to_launch_before_generation(make_campaign):
    campaign = make_campaign()
    with pytest.raises(ValueError, match="its candidates are not generated yet"):
        campaign.launch()


def test_trial_order_never_repeats_an_image_in_a_row():
    from study.models.order import trial_order

    items = [(pk, pk % 5) for pk in range(40)]
    for seed in range(20):
        order = trial_order(items, seed)
        assert sorted(order) == list(range(40))
        images = [pk % 5 for pk in order]
        assert all(a != b for a, b in zip(images, images[1:], strict=False))
    assert trial_order(items, 3) == trial_order(items, 3)
    assert trial_order(items, 3) != trial_order(items, 4)

    # The paper's design: 12 versions of 19 images, 9 of 100, plus 56 retest showings.
    paper = [(pk, pk // 12 if pk < 228 else 19 + (pk - 228) // 9) for pk in range(1128)]
    image_of = dict(paper)
    order = trial_order(paper + paper[::20], seed="paper")
    assert len(order) == 1128 + 57 and set(order) == set(image_of)
    assert all(image_of[a] != image_of[b] for a, b in zip(order, order[1:], strict=False))


def test_it_serves_pixels_equal_to_the_stored_candidate(live_campaign, client):
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    trial = rater.current_trial()
    response = client.get(f"/r/{rater.token}/t/{trial.position}.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "Content-Disposition" not in response
    import io

    served = np.asarray(Image.open(io.BytesIO(response.content)))
    with default_storage.open(trial.candidate.file.name) as fh:
        assert np.array_equal(served, np.asarray(Image.open(fh)))


def test_a_redelivered_task_waits_while_the_lease_is_alive(make_campaign):
    from datetime import timedelta

    from django.utils import timezone

    from study.generation.tasks import CandidateBusy, generate_candidate

    campaign = make_campaign(methods=("bicubic",))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("study.generation.tasks.enqueue_candidates", lambda rows: None)
        start_generation(campaign)
    candidate = campaign.candidates.first()
    lease = timezone.now() + timedelta(seconds=30)
    Candidate.objects.filter(pk=candidate.pk).update(
        status=Candidate.RUNNING, claim="other", lease_expires=lease, attempts=1
    )
    with pytest.raises(CandidateBusy):
        generate_candidate(candidate.pk)
    candidate.refresh_from_db()
    assert (candidate.status, candidate.claim, candidate.attempts) == ("running", "other", 1)


def test_a_redelivered_task_takes_over_when_the_lease_ran_out(make_campaign):
    from datetime import timedelta

    from django.utils import timezone

    from study.generation.tasks import generate_candidate

    campaign = make_campaign(methods=("bicubic",))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("study.generation.tasks.enqueue_candidates", lambda rows: None)
        start_generation(campaign)
    dead = timezone.now() - timedelta(seconds=1)
    campaign.candidates.update(
        status=Candidate.RUNNING, claim="dead", lease_expires=dead, attempts=1
    )
    for pk in campaign.candidates.values_list("pk", flat=True):
        generate_candidate(pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    assert set(campaign.candidates.values_list("status", "attempts")) == {("done", 2)}


def test_an_attempt_that_lost_its_claim_writes_nothing(make_campaign):
    from study.generation.render import Rendered
    from study.generation.tasks import _record

    campaign = make_campaign(methods=("bicubic",))
    candidate = Candidate.objects.create(
        campaign=campaign,
        image=campaign.datasets.first().images.first(),
        method=campaign.methods.first(),
    )
    Candidate.objects.filter(pk=candidate.pk).update(status=Candidate.RUNNING, claim="new")
    _record(candidate.pk, "old", Rendered("x.png", 1, 1, 1.0, 1.0))
    candidate.refresh_from_db()
    assert candidate.status == Candidate.RUNNING and candidate.file == ""


def test_each_task_goes_to_the_workers_that_can_run_it():
    from config.celery import app
    from study.datasets.tasks import run_import
    from study.generation import tasks

    def queue(task, *args, **kwargs):
        return app.amqp.router.route({}, task.name, args, kwargs)["queue"].name

    assert queue(tasks.generate_candidate, 1, method_kind=Method.NETWORK) == "gpu"
    for kind in (Method.INTERPOLATION, Method.IMPORTED, Method.REFERENCE):
        assert queue(tasks.generate_candidate, 1, method_kind=kind) == "cpu"
    assert queue(tasks.validate_model, 1) == "gpu"  # it runs the model where it will run
    assert queue(tasks.measure_candidates, [1]) == "cpu"
    assert queue(tasks.publish_candidates, [(1, Method.NETWORK)]) == "cpu"
    assert queue(run_import, 1) == "cpu"


def test_a_network_runs_equal_size_inputs_as_one_batch(
    make_campaign, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    from sr_models.methods import SRMethod

    calls = []
    real = SRMethod.upscale_batch

    def spy(self, images, *args, **kwargs):
        calls.append((self.name, len(images)))
        return real(self, images, *args, **kwargs)

    monkeypatch.setattr(SRMethod, "upscale_batch", spy)
    campaign = make_campaign(methods=("espcn", "bicubic"))
    generate(campaign, django_capture_on_commit_callbacks)
    assert campaign.status == Campaign.READY
    assert ("espcn", 3) in calls and ("espcn", 1) not in calls
    assert sorted(c for c in calls if c[0] == "bicubic") == [("bicubic", 1)] * 3
    assert set(campaign.candidates.values_list("attempts", flat=True)) == {1}
    seconds = campaign.candidates.filter(method__slug="espcn").values_list("seconds", flat=True)
    assert all(s > 0 for s in seconds)


def test_it_cancels_the_queued_candidates_and_can_start_again(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    campaign = make_campaign(methods=("nearest",))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert start_generation(campaign) == 3
    assert cancel_generation(campaign) == 3
    assert campaign.status == Campaign.DRAFT
    for callback in callbacks:
        callback()  # the withdrawn tasks arrive and do nothing
    assert campaign.progress()["cancelled"] == 3
    assert generate(campaign, django_capture_on_commit_callbacks) == 3
    assert campaign.status == Campaign.READY


def test_it_modcrops_an_odd_size_and_records_it(
    tmp_path, builtin_methods, eager_celery, django_capture_on_commit_callbacks
):
    from study.datasets.importing import import_folder
    from study.models import Dataset, Method
    from tests.conftest import png_bytes, sample_image

    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "odd.png").write_bytes(png_bytes(sample_image(3, size=(49, 66))))
    report = import_folder("odd", folder)
    assert "66x49 is not a multiple of 4" in report.files[0].message
    campaign = Campaign.objects.create(name="odd")
    campaign.datasets.set([Dataset.objects.get(name="odd")])
    campaign.methods.set(Method.objects.filter(slug__in=["bicubic", "hr"]))
    generate(campaign, django_capture_on_commit_callbacks)
    assert campaign.status == Campaign.READY
    for candidate in campaign.candidates.all():
        assert (candidate.width, candidate.height) == (64, 48)
        assert candidate.notes == "HR 66x49 modcropped to 64x48 for x4"


def test_generating_again_takes_over_a_candidate_whose_worker_died(
    make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    campaign = make_campaign(methods=("nearest",))
    generate(campaign, django_capture_on_commit_callbacks)
    stale = campaign.candidates.first()
    # As the filesystem broker leaves it when a worker dies: running, lease over, no message.
    Candidate.objects.filter(pk=stale.pk).update(
        status=Candidate.RUNNING, lease_expires=timezone.now() - timedelta(seconds=5)
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.GENERATING)
    assert generate(campaign, django_capture_on_commit_callbacks) == 1
    stale.refresh_from_db()
    assert (stale.status, stale.attempts) == (Candidate.DONE, 2)
    assert campaign.status == Campaign.READY


def test_a_network_without_cuda_says_it_falls_back_to_the_cpu(caplog, monkeypatch):
    import torch

    from study.generation import render as generation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    generation._device_note.cache_clear()
    assert generation._device_note("espcn") == "cpu"
    assert "espcn: no CUDA device in this worker; falling back to the CPU" in caplog.text
    generation._device_note.cache_clear()
