"""Several machines for real: the web server and two Celery workers as separate processes, each
with its own empty MEDIA_ROOT, an S3-compatible bucket (moto, a server process) as the only
storage they share, PostgreSQL and Redis.

One campaign goes the whole way: a zip uploaded in the admin and imported by the CPU machine, a
researcher's own model registered from the command line and checked by the GPU machine, the
campaign generated (networks on the GPU machine, interpolation on the CPU one), a metric added
and computed, a rater's session in Chromium, the report downloaded. On the way the GPU machine is
killed mid-candidate and the CPU machine, told to serve the GPU queue too, takes the candidate
over: it is made once. Nothing is written under any MEDIA_ROOT; the workers' only files are
their model caches, which may be deleted.
"""

import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections

from study.generation.local_models import ModelFileMismatch, local_model_file
from study.generation.queue import start_generation
from study.models import Campaign, Candidate, Dataset, Method, ModelRegistration, Trial
from study.models.networks import store_model_file
from tests.conftest import (
    ROOT,
    admin_login,
    png_bytes,
    require,
    sample_image,
    screenshot,
    start_session,
    wait_for,
    wait_for_image,
    wait_until_ready,
    worker_env,
)
from tests.s3_support import free_port, s3_server, s3_storage  # noqa: F401 (fixtures)
from tests.test_worker import use_broker  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.redis]

# A network candidate takes at least this long on the GPU machine, so the kill lands inside one.
SLOW_SECONDS = 1.5
LEASE = 2
VISIBILITY = 5
SECRET = "multi-machine-test-secret"

# A worker whose network upscaling is slowed down (the GPU machine that will be killed).
SLOW_WORKER = textwrap.dedent(
    """
    import sys, time
    from config.celery import app
    import django
    django.setup()
    from study.generation import networks

    real = networks.upscale

    def slow(*args, **kwargs):
        time.sleep(float(sys.argv[1]))
        return real(*args, **kwargs)

    networks.upscale = slow
    app.worker_main(["worker", "-Q", sys.argv[2], "-c", "1", "-n", sys.argv[3] + "@%h",
                     "--loglevel", "INFO", "--without-gossip", "--without-mingle"])
    """
)


class Machine:
    """One "machine": its own folder (MEDIA_ROOT, data dir, model cache) and process."""

    def __init__(self, root, name, base_env):
        self.name = name
        self.folder = root / name
        self.media = self.folder / "media"
        self.cache = self.folder / "cache"
        self.media.mkdir(parents=True)
        self.log = self.folder / f"{name}.log"
        self.env = {
            **base_env,
            "MEDIA_ROOT": str(self.media),
            "SRMOS_DATA_DIR": str(self.folder / "data"),
            "SRMOS_MODEL_FILE_CACHE": str(self.cache / "models"),
            "TMPDIR": str(self.folder / "tmp"),
        }
        (self.folder / "tmp").mkdir()
        self.proc = None

    def start(self, *command):
        # Its own session, so that killing the group takes a worker's pool child with it, as
        # when a machine dies.
        self.proc = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def run(self, *args, timeout=180):
        """A management command on this machine (an operator's shell)."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{args[0]} failed on {self.name}:\n{done.stderr}"
        return done.stdout

    def wait_for_log(self, text, timeout=120):
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{self.name} is not up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def files_in_media(self):
        return [str(p.relative_to(self.media)) for p in self.media.rglob("*") if p.is_file()]


@pytest.fixture
def machines(tmp_path):
    made = []

    def make(name, base_env):
        machine = Machine(tmp_path / "machines", name, base_env)
        made.append(machine)
        return machine

    yield make
    for machine in made:
        machine.stop()


def wait_for_http(url, proc, timeout=90):
    def up():
        if proc.poll() is not None:
            pytest.fail(f"the web server exited ({proc.returncode})")
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    wait_for(up, timeout, url)


def own_model_file(folder):
    """A tiny x4 TorchScript network: the researcher's own model."""
    import torch

    from tests.sr_custom_model import PixelShuffleNet

    torch.manual_seed(0)
    path = folder / "own-net.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still loaded
        torch.jit.script(PixelShuffleNet(scale=4).eval()).save(str(path))
    return path


def zip_of_images(path, n=3):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(n):
            zf.writestr(f"set/img{i}.png", png_bytes(sample_image(i, (32, 48))))
    path.write_bytes(buffer.getvalue())
    return path


def test_web_and_two_workers_share_only_the_bucket_and_a_killed_gpu_machine_is_taken_over(
    s3_server,  # noqa: F811
    redis_url,
    use_broker,  # noqa: F811
    researcher,
    builtin_methods,
    machines,
    page,
    tmp_path,
):
    require(
        connections["default"].vendor == "postgresql",
        "several machines share one PostgreSQL: run with DATABASE_URL=postgres://...",
    )
    try:
        the_whole_way(s3_server, redis_url, use_broker, machines, page, tmp_path)
    finally:
        # Playwright runs this code in its own greenlet, whose ORM connection pytest-django
        # does not close: close it, so the test database can be dropped.
        connections.close_all()


def the_whole_way(s3_server, redis_url, use_broker, machines, page, tmp_path):  # noqa: F811
    from config.celery import app

    options = {"visibility_timeout": VISIBILITY}
    use_broker(redis_url, options)
    base_env = {
        **worker_env(redis_url, tmp_path / "unused"),
        **s3_server.env(),
        "SECRET_KEY": SECRET,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "CELERY_RESTORE_INTERVAL": "1",
        "CELERY_RESTORE_THROTTLE": "1",
        "SRMOS_GENERATION_LEASE": str(LEASE),
        "SRMOS_GPU_BATCH": "1",  # one network candidate per task: the kill hits exactly one
        "LOG_LEVEL": "INFO",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = machines("central", base_env)
    gpu = machines("gpu-box", base_env)
    cpu = machines("cpu-box", base_env)
    # All three start at once: each imports Django (and the workers torch) on its own.
    web.start(
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--threads", "4", "--worker-class", "gthread",
    )  # fmt: skip
    gpu.start(sys.executable, "-c", SLOW_WORKER, str(SLOW_SECONDS), "gpu", "gpu")
    cpu.start(
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "cpu", "-c", "1",
        "-n", "cpu@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    )  # fmt: skip
    wait_for_http(f"{base}/healthz", web.proc)
    gpu.wait_for_log("ready.")
    cpu.wait_for_log("ready.")

    # 1. A dataset: a zip uploaded in the admin (web -> bucket), imported by the CPU machine.
    admin_login(page, base)
    page.goto(f"{base}/admin/study/dataset/")
    page.click("text=Import a zip")
    page.fill("#id_name", "remote-set")
    page.set_input_files("#id_archive", str(zip_of_images(tmp_path / "set.zip")))
    page.click("#import-form input[type=submit]")
    page.wait_for_selector("#import-report", timeout=60000)
    assert page.text_content("#import-status") == "Done"
    dataset = Dataset.objects.get(name="remote-set")
    assert dataset.images.count() == 3

    # 2. An own model: registered from the central machine's shell, checked by the GPU machine.
    model = own_model_file(tmp_path)
    out = web.run("add_method", str(model), "own-net", "--timeout", "120")
    assert "own-net registered" in out
    registration = ModelRegistration.objects.get(slug="own-net")
    model_key = registration.file

    # 3. A campaign: the network on the GPU queue, bicubic and the HR reference on the CPU one.
    campaign = Campaign.objects.create(
        name="remote", seed=3, rater_links=1, vote_floor_ms=0, min_view_ms=0, metrics=[]
    )
    campaign.datasets.set([dataset])
    campaign.methods.set(Method.objects.filter(slug__in=["own-net", "bicubic", "hr"]))
    assert start_generation(campaign) == 9
    network = Candidate.objects.filter(campaign=campaign, method__slug="own-net")
    wait_for(lambda: network.filter(status=Candidate.RUNNING).exists(), 60, "a network candidate")
    time.sleep(0.3)  # inside the candidate's SLOW_SECONDS
    gpu.kill()
    # The candidate the GPU machine held when it died (one at a time: SRMOS_GPU_BATCH=1).
    running = network.get(status=Candidate.RUNNING)
    assert running.attempts == 1

    # The CPU machine takes the GPU queue as well (an operator's `celery control add_consumer`).
    replies = app.control.add_consumer(
        "gpu", destination=[f"cpu@{socket.gethostname()}"], reply=True, timeout=10
    )
    assert replies, "the CPU worker did not answer the control command"
    wait_for(
        lambda: not campaign.candidates.exclude(status=Candidate.DONE).exists(),
        120,
        "every candidate done",
    )
    failed = list(campaign.candidates.filter(status=Candidate.FAILED).values_list("error"))
    assert not failed, failed
    running.refresh_from_db()
    assert running.attempts == 2, "the killed attempt was taken over, not repeated from scratch"
    attempts = campaign.candidates.exclude(pk=running.pk).values_list("attempts", flat=True)
    assert list(attempts) == [1] * 8
    # One object per candidate at its fixed key, no orphan and no second copy.
    assert s3_server.keys(f"candidates/{campaign.pk}/") == sorted(
        c.file.name for c in campaign.candidates.all()
    )

    # 4. A metric added after generation, computed by the CPU machine from the stored images.
    out = web.run("compute_metrics", "remote", "--add", "gmsd", "--wait", "--timeout", "120")
    assert "gmsd: 9/9" in out, out
    assert all("gmsd" in m for m in campaign.candidates.values_list("metrics", flat=True))

    # 5. A rater's session in Chromium: every image streamed by the web server from the bucket.
    campaign.refresh_from_db()
    campaign.launch()
    rater = campaign.raters.links().get()
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    image_headers = []
    page.on(
        "response",
        lambda response: image_headers.append(response.headers) if ".png" in response.url else None,
    )
    start_session(page, base, rater)
    total = rater.trials.count()
    # The serving window holds: an image beyond the next one is not served.
    beyond = page.request.get(f"{base}/r/{rater.token}/t/{total - 1}.png")
    assert beyond.status == 404
    for number in range(1, total + 1):
        wait_for_image(page, number)
        wait_until_ready(page)
        html = page.content()
        for secret in (s3_server.endpoint, s3_server.bucket, "candidates/", str(s3_server.port)):
            assert secret not in html, f"{secret!r} reached the rater's page"
        page.keyboard.press(str(1 + number % 5))
    page.wait_for_selector("text=Thank you!")
    screenshot(page, "multi-machine-rater-done")
    assert Trial.objects.filter(rater=rater, score__isnull=False).count() == total
    image_urls = [url for url in seen if url.endswith(".png")]
    assert image_urls, "the page loaded no image"
    assert all(url.startswith(f"{base}/r/{rater.token}/") for url in image_urls)
    assert all(url.startswith(base) for url in seen), "the page asked another host"
    public_ids = list(campaign.candidates.values_list("public_id", flat=True))
    assert not any(pid in url for url in seen for pid in public_ids)
    assert not any(k.lower().startswith("x-amz") for h in image_headers for k in h)
    # Padded to their version's length (from the objects' sizes in the bucket): 4 KiB steps.
    lengths = [int(h["content-length"]) for h in image_headers if "content-length" in h]
    assert lengths and all(n % 4096 == 0 for n in lengths), lengths

    # 6. The report zip from the web server.
    response = page.request.get(f"{base}/admin/study/campaign/{campaign.pk}/export/report/")
    assert response.status == 200, response.text()
    names = zipfile.ZipFile(io.BytesIO(response.body())).namelist()
    assert any(name.endswith(".csv") for name in names), names

    # Nothing under any MEDIA_ROOT; the workers' model caches hold the model, and nothing else.
    for machine in (web, gpu, cpu):
        assert machine.files_in_media() == [], f"{machine.name} wrote under its MEDIA_ROOT"
    cached = f"{registration.sha256}{Path(model_key).suffix}"
    for machine in (gpu, cpu):
        assert sorted(p.name for p in (machine.cache / "models").iterdir()) == [cached]
    assert not (web.cache / "models").exists(), "the web server never loads a model"
    assert s3_server.keys(model_key) == [model_key]
    assert s3_server.keys("imports/") == [], "the uploaded zip is deleted once imported"


@pytest.fixture
def registered_file(s3_storage):  # noqa: F811
    data = os.urandom(4096)
    path, sha, _ = store_model_file(io.BytesIO(data), "net.pth")
    return SimpleNamespace(file=path, sha256=sha, data=data)


def test_a_worker_copies_a_model_file_from_the_bucket_once_and_checks_it(
    registered_file, settings, tmp_path
):
    settings.SRMOS_MODEL_FILE_CACHE = tmp_path / "cache"
    local = local_model_file(registered_file)
    assert local == tmp_path / "cache" / f"{registered_file.sha256}.pth"
    assert local.read_bytes() == registered_file.data
    stamp = local.stat().st_mtime_ns
    assert local_model_file(registered_file) == local and local.stat().st_mtime_ns == stamp

    # A damaged copy is noticed by its hash and filled again from the bucket.
    local.write_bytes(b"garbage")
    from study.generation import local_models

    local_models._verified.clear()
    assert local_model_file(registered_file).read_bytes() == registered_file.data
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [local.name]


def test_a_stored_file_that_does_not_match_its_hash_is_refused_and_leaves_nothing(
    registered_file, settings, tmp_path
):
    settings.SRMOS_MODEL_FILE_CACHE = tmp_path / "cache"
    default_storage.delete(registered_file.file)
    default_storage.save(registered_file.file, ContentFile(b"other bytes"))
    with pytest.raises(ModelFileMismatch, match="does not match its registration"):
        local_model_file(registered_file)
    assert list((tmp_path / "cache").iterdir()) == [], "no partial file is left behind"
    default_storage.delete(registered_file.file)
    with pytest.raises(FileNotFoundError):
        local_model_file(registered_file)
    assert hashlib.sha256(registered_file.data).hexdigest() == registered_file.sha256


def test_a_rater_image_is_read_from_the_bucket_in_one_request_and_a_missing_one_is_not_found(
    s3_storage,  # noqa: F811
):
    name = default_storage.save("candidates/1/abc.png", ContentFile(b"\x89PNG bytes"))
    assert default_storage.read_bytes(name) == b"\x89PNG bytes"
    default_storage.delete(name)
    with pytest.raises(FileNotFoundError):
        default_storage.read_bytes(name)
