"""`paper_study`: the SRGAN paper's MOS study in one command, run as a researcher runs it."""

import shutil
from io import StringIO

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from study.datasets import paper
from study.models import Campaign, Candidate, Dataset, ImportedResult, Method, Rater, Trial
from tests.conftest import png_bytes, sample_image, shared_data

pytestmark = pytest.mark.django_db(transaction=True)

# The authors' released outputs, Y-channel PSNR with 4 pixels cropped (docs/models.md).
AUTHORS_PSNR = {
    ("set5", "srgan-vgg54"): 29.41,
    ("set5", "srresnet-mse-authors"): 32.06,
    ("set14", "srgan-vgg54"): 26.11,
    ("set14", "srresnet-mse-authors"): 28.59,
}


def paper_study(*args):
    out, err = StringIO(), StringIO()
    call_command("paper_study", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def rows():
    """How many rows of each kind exist: a second run must add none."""
    return {
        model.__name__: model.objects.count()
        for model in (Dataset, ImportedResult, Method, Campaign, Candidate, Rater, Trial)
    }


@pytest.mark.slow
def test_it_runs_the_paper_study_end_to_end_and_table_2_lists_every_method(
    builtin_methods, tmp_path
):
    data = shared_data()
    report = tmp_path / "report"
    # srmos' own networks take minutes on a shared CPU and the metric panel as long again; the
    # command's default design has them (docs/running-a-study.md).
    quick = ["--without-networks", "--metrics", "none", "--report-dir", str(report)]
    out, err = paper_study(str(data), "--simulate", *quick)

    campaign = Campaign.objects.get(name="srgan-replication")
    assert campaign.status == Campaign.LIVE
    assert (campaign.scale, campaign.calibration_images, campaign.gold_items) == (4, 20, True)
    assert campaign.calibration_dataset.name == "bsd-calibration"
    assert campaign.calibration_dataset.images.count() == 20
    assert sorted(campaign.datasets.values_list("name", flat=True)) == ["set14", "set5"]
    assert campaign.raters.links().count() == 26
    assert campaign.raters.simulated().count() == 26
    assert campaign.lr_warnings() == []
    design = {"nearest", "bicubic", "srgan-vgg54", "srresnet-mse-authors", "hr"}
    assert set(campaign.methods.values_list("slug", flat=True)) == design

    table2 = pd.read_csv(report / "table2.csv")
    assert set(table2.columns) - {"dataset", "metric"} == design
    mos = table2[table2["metric"] == "mos"].set_index("dataset")
    assert set(mos.index) == {"set5", "set14"}
    assert mos[sorted(design)].notna().all().all()
    assert (mos["hr"] > mos["bicubic"]).all() and (mos["bicubic"] > mos["nearest"]).all()
    psnr = table2[table2["metric"] == "psnr"].set_index("dataset")
    for (dataset, method), published in AUTHORS_PSNR.items():
        assert psnr.loc[dataset, method] == pytest.approx(published, abs=0.006)

    assert "26 rater links" in out
    for path in ("change", "viewer", "report", "export/links"):
        assert f"/admin/study/campaign/{campaign.pk}/{path}/" in out
    assert str(report) in out and "MOS per method" in out

    before = rows()
    again, _ = paper_study(str(data), "--simulate", *quick)
    assert rows() == before
    assert "dataset set5 exists (5 images): kept" in again
    assert "srgan-vgg54 results for set14 exist (14): kept" in again
    assert "campaign srgan-replication exists (live" in again
    assert "26 simulated raters exist: kept" in again


def test_it_refuses_a_folder_that_lacks_files_naming_all_of_them_before_changing_anything(
    builtin_methods, tmp_path, media_root
):
    root = tmp_path / "data"
    image = png_bytes(sample_image(0, (32, 32)))
    for folder, names in paper.expected_files().items():
        (root / folder).mkdir(parents=True)
        for name in names:
            (root / folder / name).write_bytes(image)
    (root / "Set5/HR/bird_HR.png").unlink()
    (root / "Set14/results/SRGAN-VGG54/zebra_SRGAN-VGG54.png").unlink()
    (root / "Set14/results/SRGAN-VGG54/lenna_SRGAN-VGG54.png").unlink()
    shutil.rmtree(root / "Set14/LRx4")
    (root / "BSD200/HR").mkdir(parents=True)
    for i in range(3):
        (root / "BSD200/HR" / f"{i}.png").write_bytes(image)
    before = rows()

    with pytest.raises(CommandError) as refused:
        paper_study(str(root), "--simulate")

    message = str(refused.value)
    assert "nothing was imported or created" in message
    assert "Set5/HR/: bird_HR.png" in message
    assert "Set14/results/SRGAN-VGG54/: lenna_SRGAN-VGG54.png, zebra_SRGAN-VGG54.png" in message
    assert "Set14/LRx4/ (the whole folder: baboon_LR.png, barbara_LR.png" in message
    assert "zebra_LR.png)" in message
    assert "BSD200/HR/: 20 calibration images" in message and "3 found" in message
    assert "Set5/LRx4" not in message and "SRResNet-MSE" not in message
    assert rows() == before
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))
