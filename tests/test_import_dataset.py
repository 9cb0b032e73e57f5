import pytest
from django.core.management import CommandError, call_command

from study.models import Dataset, SourceImage
from tests.conftest import png_bytes, sample_image

pytestmark = pytest.mark.django_db


def test_it_imports_a_folder(image_folder, capsys):
    folder = image_folder(3)
    call_command("import_dataset", "set-a", str(folder))
    dataset = Dataset.objects.get(name="set-a")
    assert sorted(dataset.images.values_list("name", flat=True)) == ["img0", "img1", "img2"]
    image = dataset.images.get(name="img0")
    assert (image.width, image.height) == (64, 48)
    assert len(image.sha256) == 64
    assert "3 images imported" in capsys.readouterr().out


def test_it_reports_each_bad_file_and_imports_nothing(image_folder, media_root, capsys):
    folder = image_folder(2)
    (folder / "broken.png").write_bytes(png_bytes(sample_image(5))[:200])
    (folder / "notes.txt").write_text("not an image")
    with pytest.raises(CommandError) as excinfo:
        call_command("import_dataset", "set-b", str(folder))
    message = str(excinfo.value)
    assert "broken.png" in message and "notes.txt" in message
    err = capsys.readouterr().err
    assert "broken.png" in err and "not a readable image" in err
    assert "notes.txt" in err and "not an image file" in err
    assert not Dataset.objects.filter(name="set-b").exists()
    assert SourceImage.objects.count() == 0
    assert not (media_root / "datasets" / "set-b").exists()


def test_it_can_skip_bad_files_and_says_so(image_folder, capsys):
    folder = image_folder(2)
    (folder / "notes.txt").write_text("not an image")
    call_command("import_dataset", "set-c", str(folder), "--skip-bad")
    assert Dataset.objects.get(name="set-c").images.count() == 2
    assert "skipped   notes.txt" in capsys.readouterr().out


def test_it_refuses_duplicate_content(image_folder):
    folder = image_folder(2)
    (folder / "copy.png").write_bytes((folder / "img0.png").read_bytes())
    with pytest.raises(CommandError, match=r"img0.png \(same content as copy.png\)"):
        call_command("import_dataset", "set-d", str(folder))


def test_it_converts_grey_and_rgba_and_reports_it(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "modes"
    folder.mkdir()
    Image.fromarray(sample_image(1)[:, :, 0]).save(folder / "grey.png")
    Image.fromarray(sample_image(2)).convert("RGBA").save(folder / "alpha.png")
    call_command("import_dataset", "set-e", str(folder))
    notes = dict(SourceImage.objects.values_list("name", "notes"))
    assert notes == {"grey": "converted from L to RGB", "alpha": "converted from RGBA to RGB"}
    assert "converted from L to RGB" in capsys.readouterr().out


def test_it_fails_clearly_on_a_missing_folder(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_dataset", "set-f", str(tmp_path / "nowhere"))
