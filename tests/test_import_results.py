"""Results made elsewhere: matched by name stem like sr_models.evaluate, bad files named."""

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase
from django.urls import reverse

from study.generation.queue import start_generation
from study.models import Campaign, Candidate, ImportedResult, LowResImage, Method
from tests.conftest import SHARED_DATA, png_bytes, sample_image, zip_upload

pytestmark = pytest.mark.django_db


def results_folder(tmp_path, files):
    folder = tmp_path / "results"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_it_reports_unmatched_wrong_size_and_missing_by_name(dataset, tmp_path, capsys):
    folder = results_folder(
        tmp_path,
        {
            "img0_SRGAN-VGG54.png": png_bytes(sample_image(0)),
            "img1_SRGAN-VGG54.png": png_bytes(sample_image(1, size=(40, 64))),
            "stray_SRGAN-VGG54.png": png_bytes(sample_image(4)),
        },
    )
    with pytest.raises(CommandError, match="img1_SRGAN-VGG54.png") as excinfo:
        call_command("import_results", "tiny", "theirs", str(folder))
    assert "stray_SRGAN-VGG54.png" in str(excinfo.value)
    err = capsys.readouterr().err
    assert "size 64x40 differs from img0.png" not in err
    assert "img1_SRGAN-VGG54.png: size 64x40 differs from img1.png 64x48" in err
    assert "stray_SRGAN-VGG54.png: matches no image of tiny" in err
    assert "missing   img2.png: no result file for this image" in err
    assert not Method.objects.filter(slug="theirs").exists()
    assert not ImportedResult.objects.exists()

    call_command("import_results", "tiny", "theirs", str(folder), "--skip-bad")
    out = capsys.readouterr().out
    assert "imported  img0_SRGAN-VGG54.png: result for img0.png" in out
    assert "skipped   img1_SRGAN-VGG54.png" in out
    method = Method.objects.get(slug="theirs")
    assert method.kind == Method.IMPORTED
    assert list(method.results.values_list("image__name", flat=True)) == ["img0"]


def test_it_refuses_a_method_that_is_not_imported(dataset, builtin_methods, tmp_path):
    folder = results_folder(tmp_path, {"img0.png": png_bytes(sample_image(0))})
    with pytest.raises(CommandError, match="bicubic is interpolation, not imported"):
        call_command("import_results", "tiny", "bicubic", str(folder))


def test_an_imported_method_makes_candidates_from_its_files(
    dataset, builtin_methods, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    files = {f"img{i}_theirs.png": png_bytes(sample_image(i + 10)) for i in range(3)}
    call_command("import_results", "tiny", "theirs", str(results_folder(tmp_path, files)))
    campaign = Campaign.objects.create(name="with-results")
    campaign.datasets.set([dataset])
    campaign.methods.set(Method.objects.filter(slug__in=["theirs", "hr"]))
    with django_capture_on_commit_callbacks(execute=True):
        start_generation(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    assert campaign.candidates.filter(method__slug="theirs", status=Candidate.DONE).count() == 3


def test_the_admin_takes_a_zip_of_results(dataset, client, researcher, eager_celery):
    entries = {f"out/img{i}_mine.png": png_bytes(sample_image(i + 20)) for i in range(3)}
    buffer = zip_upload({**entries, "../evil.png": png_bytes(sample_image(9))}, "results.zip")
    client.force_login(researcher)
    url = reverse("admin:study_method_import_results")

    def post(data):  # the upload's import job runs in-process; its page shows the report
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post(url, data)
        assert response.status_code == 302
        return client.get(response.url)

    response = post({"dataset": dataset.pk, "method": "mine", "archive": buffer})
    html = response.content.decode()
    assert response.status_code == 200
    assert "../evil.png" in html and "unsafe path in the zip" in html
    assert not Method.objects.filter(slug="mine").exists()

    buffer.seek(0)
    response = post({"dataset": dataset.pk, "method": "mine", "archive": buffer, "skip_bad": "on"})
    assert "3 results imported" in response.content.decode()
    assert Method.objects.get(slug="mine").results.count() == 3


@pytest.mark.slow
def test_the_srgan_authors_outputs_match_19_of_19_with_evaluate_s_psnr(
    builtin_methods, eager_celery, django_capture_on_commit_callbacks, capsys
):
    if not (SHARED_DATA / "Set5" / "HR").is_dir():
        pytest.skip(f"{SHARED_DATA} (the shared benchmark images) is not on this machine")
    from sr_models.evaluate import evaluate

    matched = 0
    for name in ("Set5", "Set14"):
        root = SHARED_DATA / name
        # The release's own LR images come along (a campaign may use them instead of a kernel).
        call_command("import_dataset", name.lower(), str(root / "HR"), "--lr-dir", root / "LRx4")
        capsys.readouterr()
        call_command(
            "import_results", name.lower(), "srgan-vgg54", str(root / "results" / "SRGAN-VGG54")
        )
        out = capsys.readouterr().out
        matched += out.count("imported  ")
        assert "error" not in out and "missing" not in out
    assert matched == 19
    assert LowResImage.objects.count() == 19
    campaign = Campaign.objects.create(name="srgan-authors")
    campaign.datasets.set(campaign.datasets.model.objects.filter(name__in=["set5", "set14"]))
    campaign.methods.set(Method.objects.filter(slug="srgan-vgg54"))
    with django_capture_on_commit_callbacks(execute=True):
        assert start_generation(campaign) == 19
    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    ours = dict(campaign.candidates.values_list("image__name", "psnr"))
    for name in ("Set5", "Set14"):
        root = SHARED_DATA / name
        images, _, problems = evaluate(root / "HR", root / "results" / "SRGAN-VGG54", 4)
        assert not problems
        for row in images:
            assert ours[row["name"]] == row["psnr"], row["name"]


def test_the_method_page_links_to_the_results_upload(dataset, client, researcher, tmp_path):
    files = {f"img{i}_theirs.png": png_bytes(sample_image(i + 10)) for i in range(3)}
    call_command("import_results", "tiny", "theirs", str(results_folder(tmp_path, files)))
    method = Method.objects.get(slug="theirs")
    client.force_login(researcher)
    html = client.get(reverse("admin:study_method_change", args=[method.pk])).content.decode()
    assert "3 files." in html
    assert f"{reverse('admin:study_method_import_results')}?method=theirs" in html
    form = client.get(reverse("admin:study_method_import_results") + "?method=theirs")
    assert 'value="theirs"' in form.content.decode()
