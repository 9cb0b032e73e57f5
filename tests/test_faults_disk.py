"""A full disk: no half-written file at a final path, a message that says what to free and how to
resume, and jobs that settle and heal once space is freed (issue 23, finding 5).

The media folder is a small tmpfs mounted by the test (root on Linux; CI runs as root), shared by
the test and, for generation, a real `celery worker` process on Redis. A filler file leaves only
a little room, so the disk fills in the middle of the job.
"""

import hashlib
import io
import shutil
import subprocess
import time
import zipfile

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from study.datasets.importing import import_files
from study.generation.queue import retry_failed, start_generation
from study.models import Campaign, Candidate, Dataset, ImportJob, Method, SourceImage
from study.models.networks import ModelRegistration
from tests.conftest import png_bytes, require, worker_env
from tests.test_worker import use_broker, wait_until_ready  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow
# Real commits: the worker reads the rows, and the import runs from an on-commit hook.
with_db = pytest.mark.django_db(transaction=True)

DISK_SIZE = 2 << 20  # the tmpfs; the jobs below need well under half of it


class SmallDisk:
    """A tmpfs at `path`; `fill(leave)` leaves `leave` bytes free, `free_up()` gives them back."""

    def __init__(self, path):
        self.path = path
        self.filler = path / "filler.bin"

    def free(self):
        return shutil.disk_usage(self.path).free

    def fill(self, leave):
        with self.filler.open("ab") as f:
            f.write(b"\0" * max(self.free() - leave, 0))

    def free_up(self):
        self.filler.unlink()


@pytest.fixture
def small_disk(media_root):
    """MEDIA_ROOT on its own 2 MB tmpfs, unmounted afterwards."""
    media_root.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        require(False, "no `mount` command to mount a tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "srmos-full", media_root],
        capture_output=True,
        text=True,
    )
    require(
        mounted.returncode == 0,
        f"cannot mount a tmpfs (needs root on Linux): {mounted.stderr.strip()}",
    )
    try:
        yield SmallDisk(media_root)
    finally:
        if subprocess.run(["umount", media_root], capture_output=True).returncode:
            subprocess.run(["umount", "-l", media_root], check=True)


def photo(seed, size=128):
    """A 128 x 128 crop of a photograph (about 40 KB as PNG), different per seed."""
    from skimage import data

    rng = np.random.default_rng(seed)
    image = data.astronaut()
    y, x = rng.integers(0, image.shape[0] - size, 2)
    return image[y : y + size, x : x + size].copy()


def final_files(root):
    """Every file under `root` but the filler, by path relative to it."""
    return {
        str(p.relative_to(root)): p
        for p in root.rglob("*")
        if p.is_file() and p.name != "filler.bin"
    }


def assert_whole_pngs(files):
    """No temporary file is left, and each file at a final path decodes to the end."""
    assert not [name for name in files if name.endswith(".part")], "temporary files left behind"
    for name, path in files.items():
        assert path.stat().st_size > 0, f"{name} is empty"
        with Image.open(path) as image:
            image.load()  # raises on a truncated PNG


def assert_disk_full_message(text, root, resume):
    first = text.splitlines()[0].removeprefix("DiskFull: ")
    assert first.startswith(f"The disk that holds {root} is full"), first
    assert "Free about" in first and " KB" in first and resume in first, first


def wait_settled(campaign, timeout=120):
    """Wait until no candidate is queued or running: every one is made or failed."""
    deadline = time.monotonic() + timeout
    while campaign.candidates.filter(status__in=[Candidate.QUEUED, Candidate.RUNNING]).exists():
        if time.monotonic() > deadline:
            pytest.fail(f"generation did not settle in {timeout} s: {campaign.progress()}")
        time.sleep(0.3)


@with_db
@pytest.mark.redis
def test_it_fails_candidates_cleanly_on_a_full_disk_and_retry_heals_them(
    small_disk,
    builtin_methods,
    start_worker,
    redis_url,
    use_broker,  # noqa: F811
    client,
    researcher,
):
    import_files("photos", [(f"p{i}.png", png_bytes(photo(i))) for i in range(4)])
    campaign = Campaign.objects.create(name="full", seed=7, rater_links=1, metrics=[])
    campaign.datasets.set(Dataset.objects.filter(name="photos"))
    campaign.methods.set(Method.objects.filter(slug__in=["nearest", "bicubic", "hr"]))
    use_broker(redis_url)
    start_worker(worker_env(redis_url, small_disk.path))
    # Room for two or three of the twelve candidates (about 40 KB each).
    small_disk.fill(leave=100_000)

    assert start_generation(campaign) == 12
    wait_settled(campaign)

    made = {c.pk: c for c in campaign.candidates.filter(status=Candidate.DONE)}
    failed = list(campaign.candidates.filter(status=Candidate.FAILED))
    assert made and failed, campaign.progress()
    # Nothing half-written: each file at a final path is a whole PNG of a made candidate.
    files = final_files(small_disk.path / "candidates")
    assert_whole_pngs(files)
    assert set(files) == {c.output_path().removeprefix("candidates/") for c in made.values()}
    for candidate in failed:
        assert_disk_full_message(candidate.error, small_disk.path, "press Retry failed")
        assert f"candidate(s) of campaign {campaign.name} are not made yet" in candidate.error
    # The researcher's page says it: generation has settled, the failures carry the remedy.
    campaign.refresh_from_db()
    assert campaign.status != Campaign.READY
    client.force_login(researcher)
    page = client.get(reverse("admin:study_campaign_change", args=[campaign.pk])).content.decode()
    assert "remaining 0" in page
    assert f"The disk that holds {small_disk.path} is full" in page
    assert "Retry failed on the campaign" in page

    small_disk.free_up()
    inodes = {pk: (small_disk.path / c.output_path()).stat().st_ino for pk, c in made.items()}
    assert retry_failed(campaign) == len(failed)
    wait_until_ready(campaign, timeout=120)

    # Each candidate made exactly once: the retry remade the failed ones only.
    for candidate in campaign.candidates.all():
        if candidate.pk in made:
            assert candidate.attempts == 1
            assert candidate.finished_at == made[candidate.pk].finished_at
            assert (small_disk.path / candidate.file.name).stat().st_ino == inodes[candidate.pk]
        else:
            assert candidate.attempts == 2 and candidate.error == ""
    files = final_files(small_disk.path / "candidates")
    assert_whole_pngs(files)
    assert sorted(files) == sorted(
        c.output_path().removeprefix("candidates/") for c in campaign.candidates.all()
    )


def photos_zip(n):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.writestr(f"photos/p{i}.png", png_bytes(photo(i)))
    return buffer.getvalue()


def upload(data):
    buffer = io.BytesIO(data)
    buffer.name = "photos.zip"
    return buffer


@with_db
def test_an_import_that_fills_the_disk_leaves_nothing_half_imported(
    small_disk, eager_celery, researcher
):
    from study.datasets.jobs import start_import

    data = photos_zip(5)
    # The uploaded zip fits, and one or two of its five images after it: not the whole import.
    small_disk.fill(leave=len(data) + 60_000)
    parameters = {
        "dataset": "photos",
        "skip_bad": False,
        "description": "",
        "is_calibration": False,
    }

    job = start_import(ImportJob.DATASET, upload(data), parameters, researcher)

    assert job.status == ImportJob.FAILED
    assert final_files(small_disk.path) == {}, "nothing half-imported, not even the zip"
    assert not Dataset.objects.filter(name="photos").exists()
    assert not SourceImage.objects.exists()
    assert_disk_full_message(job.error, small_disk.path, "import the files again")
    assert "this import of 5 images needs at most that; nothing of it was kept" in job.error

    small_disk.free_up()
    job = start_import(ImportJob.DATASET, upload(data), parameters, researcher)
    assert job.status == ImportJob.DONE, job.error
    assert Dataset.objects.get(name="photos").images.count() == 5
    files = final_files(small_disk.path)
    assert len(files) == 5
    assert_whole_pngs(files)


@with_db
def test_a_model_upload_that_fills_the_disk_leaves_no_partial_file(small_disk):
    from study.generation.registering import register

    weights = np.random.default_rng(0).bytes(300_000)
    small_disk.fill(leave=100_000)

    with pytest.raises(OSError) as refused:
        register(io.BytesIO(weights), "big.pth", slug="big", enqueue=False)

    assert final_files(small_disk.path) == {}, "no partial model file"
    assert not ModelRegistration.objects.exists()
    message = f"{type(refused.value).__name__}: {refused.value}"
    assert_disk_full_message(message, small_disk.path, "register it again")
    assert "the model file big.pth is that large" in message
    assert "Free about 300 KB" in message

    small_disk.free_up()
    registration = register(io.BytesIO(weights), "big.pth", slug="big", enqueue=False)
    stored = small_disk.path / registration.file
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == registration.sha256
    assert final_files(small_disk.path) == {registration.file: stored}


def test_the_sr_models_commands_leave_no_partial_image_on_a_full_disk(small_disk, tmp_path, capsys):
    from sr_models.degrade import main

    hr = tmp_path / "hr"
    hr.mkdir()
    for i in range(6):
        (hr / f"p{i}.png").write_bytes(png_bytes(photo(i, size=256)))
    out = small_disk.path / "lr"
    small_disk.fill(leave=30_000)

    assert main(["--in-dir", str(hr), "--out-dir", str(out), "--scale", "2"]) == 2

    error = capsys.readouterr().err
    assert error.startswith(f"error: The disk that holds {out} is full"), error
    assert "run the command again" in error
    files = final_files(out)
    assert len(files) < 6
    assert_whole_pngs(files)


class BreaksMidway(ContentFile):
    """Content whose reading fails after the first chunk, as a dying upload or process would."""

    def chunks(self, chunk_size=None):
        yield b"\x89PNG\r\n\x1a\n"
        raise ConnectionResetError("the upload stopped")


def test_a_write_that_fails_midway_leaves_nothing_at_its_name(media_root):
    from django.core.files.storage import default_storage

    with pytest.raises(ConnectionResetError):
        default_storage.save("candidates/1/x.png", BreaksMidway(b""))
    assert final_files(media_root) == {}

    # Still Django's rule: save() never overwrites, a second file of that name gets another.
    first = default_storage.save("candidates/1/x.png", ContentFile(b"one"))
    second = default_storage.save("candidates/1/x.png", ContentFile(b"two"))
    assert first == "candidates/1/x.png" and second != first
    assert (media_root / first).read_bytes() == b"one"
    assert (media_root / second).read_bytes() == b"two"
    assert sorted(final_files(media_root)) == sorted([first, second])
