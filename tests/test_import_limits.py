"""Imports are bounded: zip sizes from the headers and while reading, pixels before decoding,
and images taken by their content (PNG, JPEG, BMP), never by their name."""

import io
import struct
import zipfile

import pytest
from django.core.files.storage import default_storage
from PIL import EpsImagePlugin, Image

from study.datasets.importing import ImportFailed, import_zip
from study.models import Dataset, SourceImage
from tests.conftest import png_bytes, sample_image, zip_upload

pytestmark = pytest.mark.django_db

MB = 2**20


def deflated_zip(entries):
    """A zip of {name: bytes}, compressed (zeros shrink a thousandfold)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    buffer.seek(0)
    return buffer


@pytest.fixture
def inflated(monkeypatch):
    """The names of the zip members opened for reading (inflated), in order."""
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, mode="r", *args, **kwargs):
        if mode == "r":  # writing a test's zip opens its members too
            opened.append(getattr(name, "filename", name))
        return real_open(self, name, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return opened


def failed_report(upload, name="bounded"):
    with pytest.raises(ImportFailed) as excinfo:
        import_zip(name, upload)
    return {f.name: (f.status, f.message) for f in excinfo.value.report.files}


def test_a_zip_of_large_members_is_refused_by_their_headers_without_inflating_them(
    settings, inflated
):
    settings.SRMOS_MAX_ZIP_MEMBER_BYTES = 1 * MB
    upload = deflated_zip({f"big{i}.png": b"\0" * (MB + 1) for i in range(4)})
    assert len(upload.getvalue()) < 20_000
    rows = failed_report(upload)
    for i in range(4):
        status, message = rows[f"big{i}.png"]
        assert status == "error" and "too large once uncompressed" in message
        assert "SRMOS_MAX_ZIP_MEMBER_MB" in message
    assert inflated == []
    assert not Dataset.objects.exists()


def test_a_zip_too_large_in_all_is_refused_before_any_member_is_read(settings, inflated):
    settings.SRMOS_MAX_ZIP_BYTES = 3 * MB
    upload = deflated_zip({f"part{i}.png": b"\0" * MB for i in range(4)})
    with pytest.raises(ValueError, match=r"holds 4 MB once uncompressed; the limit is 3 MB"):
        import_zip("bounded", upload)
    assert inflated == []


def lying_size(upload, size):
    """The zip with its one member's sizes in the central directory rewritten to `size`."""
    data = bytearray(upload.getvalue())
    entry = data.index(b"PK\x01\x02")
    data[entry + 24 : entry + 28] = struct.pack("<I", size)
    return io.BytesIO(bytes(data))


def test_a_member_whose_header_lies_is_never_read_past_what_it_declared(settings):
    settings.SRMOS_MAX_ZIP_MEMBER_BYTES = 1 * MB
    upload = lying_size(deflated_zip({"liar.png": b"\0" * (8 * MB)}), 1000)
    rows = failed_report(upload)
    status, message = rows["liar.png"]
    assert status == "error" and "corrupt zip entry" in message
    assert not Dataset.objects.exists()


def test_a_tiny_zip_of_a_9000_by_9000_png_is_refused_before_it_is_decoded():
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, format="PNG")
    upload = deflated_zip({"huge.png": buffer.getvalue()})
    assert len(upload.getvalue()) < 100_000
    status, message = failed_report(upload)["huge.png"]
    assert status == "error" and "decompression bomb" in message
    assert "SRMOS_MAX_IMAGE_PIXELS (40,000,000)" in message
    assert not Dataset.objects.exists()


def tiff_bytes():
    buffer = io.BytesIO()
    Image.fromarray(sample_image(3)).save(buffer, format="TIFF")
    return buffer.getvalue()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 48\n%%EndComments\nshowpage\n%%EOF\n"


def test_eps_and_tiff_named_png_are_refused_by_content_and_nothing_stored_is_lost(
    monkeypatch, media_root
):
    eps_opened = []
    monkeypatch.setattr(
        EpsImagePlugin.EpsImageFile, "_open", lambda self: eps_opened.append(self) or 1 / 0
    )
    import_zip("kept", zip_upload({"first.png": png_bytes(sample_image(0))}))
    kept = SourceImage.objects.get()
    files_before = sorted(p.name for p in media_root.rglob("*") if p.is_file())

    upload = zip_upload(
        {
            "set/scan.png": tiff_bytes(),
            "set/figure.png": EPS,
            "set/good.png": png_bytes(sample_image(1)),
        }
    )
    rows = failed_report(upload, name="kept")
    for name in ("scan.png", "figure.png"):
        status, message = rows[name]
        assert status == "error"
        assert message == (
            "not a readable image: its content is not PNG, JPEG or BMP, whatever its name says"
        )
    assert rows["good.png"][0] == "skipped"
    assert eps_opened == []  # the EPS reader (and so Ghostscript) never saw the file
    assert list(SourceImage.objects.all()) == [kept]
    assert default_storage.exists(kept.file.name)
    assert sorted(p.name for p in media_root.rglob("*") if p.is_file()) == files_before


def test_a_jpeg_named_png_is_taken_by_its_content():
    buffer = io.BytesIO()
    Image.fromarray(sample_image(2)).save(buffer, format="JPEG")
    report = import_zip("jpeg", zip_upload({"photo.png": buffer.getvalue()}))
    assert [f.name for f in report.imported] == ["photo.png"]
    with default_storage.open(SourceImage.objects.get().file.name) as fh:
        assert Image.open(fh).format == "PNG"
