"""Reading and writing images: RGB uint8, one-line errors naming the file and the fix."""

import numpy as np
import pytest
from PIL import Image

from sr_models.errors import ImageError
from sr_models.io import list_images, read_rgb, read_rgb_report, write_png


def test_it_round_trips_a_png_without_metadata(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    write_png(path, img)
    np.testing.assert_array_equal(read_rgb(path), img)
    with Image.open(path) as im:
        assert not im.info
    data = path.read_bytes()
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"pHYs", b"tIME", b"eXIf"):
        assert chunk not in data


def test_it_names_the_file_of_a_corrupt_image(tmp_path):
    path = tmp_path / "broken.png"
    write_png(path, np.zeros((64, 64, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ImageError, match="broken.png"):
        read_rgb(path)


def test_it_names_the_file_of_a_non_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageError, match="notes.png.*not a readable image"):
        read_rgb(path)
    with pytest.raises(ImageError, match="no such file"):
        read_rgb(tmp_path / "missing.png")
    assert issubclass(ImageError, ValueError)


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "I;16"])
def test_it_refuses_non_rgb_unless_asked_to_convert(tmp_path, mode):
    path = tmp_path / f"img_{mode.replace(';', '')}.png"
    Image.new(mode, (5, 4)).save(path)
    with pytest.raises(ImageError) as err:
        read_rgb(path)
    message = str(err.value)
    assert path.name in message and "convert" in message and "\n" not in message
    img, note = read_rgb_report(path)
    assert img.shape == (4, 5, 3) and img.dtype == np.uint8
    assert note is not None and mode in note
    assert read_rgb(path, convert=True).shape == (4, 5, 3)


def test_it_converts_grey_and_rgba_faithfully(tmp_path):
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    img = read_rgb(tmp_path / "g.png", convert=True)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], grey)
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    assert (read_rgb(tmp_path / "opaque.png", convert=True)[..., 0] == 200).all()


def test_it_reads_a_palette_png_without_transparency(tmp_path):
    Image.new("RGB", (3, 3), (10, 20, 30)).convert("P").save(tmp_path / "p.png")
    img, note = read_rgb_report(tmp_path / "p.png")
    assert (read_rgb(tmp_path / "p.png") == img).all() and note.startswith("palette")


def test_it_lists_images_and_refuses_an_empty_folder(tmp_path):
    with pytest.raises(ImageError, match="no images"):
        list_images(tmp_path)
    write_png(tmp_path / "b.png", np.zeros((2, 2, 3), dtype=np.uint8))
    (tmp_path / "a.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["b.png"]


def test_it_refuses_to_write_a_float_image(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "x.png", np.zeros((2, 2, 3)))
