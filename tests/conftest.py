"""Shared personas, factories and service checks.

Tests that need PostgreSQL, Redis or Chromium skip with a reason on a developer's machine that
lacks them, and fail under CI (CI=true), where .ci/run provides all three.
"""

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SRMOS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHROMIUM = os.environ.get("SRMOS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's sync API runs an event loop in the test thread; the ORM calls there are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
ARTIFACTS = ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("SRMOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require(available, reason):
    """Skip when a service is missing, except under CI where every test must run."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI requires it: {reason}")
    pytest.skip(reason)


def _port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_available():
    return _port_open("127.0.0.1", 6379)


@pytest.fixture
def redis_url():
    require(redis_available(), "Redis is not running on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture
def chromium_path():
    require(
        Path(CHROMIUM).exists(),
        f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)",
    )
    return CHROMIUM


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eager_celery(settings):
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def sample_image(seed=0, size=(48, 64)):
    """A natural-looking RGB crop (scikit-image's astronaut), different per seed."""
    from skimage import data

    photo = data.astronaut()
    h, w = size
    y = (seed * 37) % (photo.shape[0] - h)
    x = (seed * 53) % (photo.shape[1] - w)
    return photo[y : y + h, x : x + w].copy()


def run_python(*args, env=None, timeout=300):
    """Run `python ARGS...` from the repository root as a user would; returns the finished run."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def zip_upload(entries, name="upload.zip"):
    """A zip of {entry name: bytes} as an uploaded file (a named, rewound buffer)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for entry, data in entries.items():
            zf.writestr(entry, data)
    buffer.seek(0)
    buffer.name = name
    return buffer


def shared_data():
    """The public benchmark images (../shared/data); the test skips cleanly without them."""
    if not (SHARED_DATA / "Set5" / "HR").is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA} (set SRMOS_SHARED_DATA)")
    return SHARED_DATA


def synthetic_votes(seed, n_images=3, profile="noisy", **kwargs):
    """Simulated votes on the paper's design restricted to its first `n_images` images."""
    from study.analysis import paper_design, simulate_votes

    design = paper_design()
    design = design[design["image"].isin([f"img{i:03d}" for i in range(n_images)])]
    return simulate_votes(design, seed=seed, profile=profile, **kwargs)


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    def make(n=3, size=(48, 64), name="hr"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(n):
            (folder / f"img{i}.png").write_bytes(png_bytes(sample_image(i, size)))
        return folder

    return make


@pytest.fixture
def dataset(image_folder, builtin_methods):
    from study.datasets.importing import import_folder
    from study.models import Dataset

    import_folder("tiny", image_folder(3))
    return Dataset.objects.get(name="tiny")


@pytest.fixture
def builtin_methods(db):
    """The built-in methods, also after a transactional test flushed the data migration's rows."""
    import importlib

    from django.apps import apps

    importlib.import_module("study.migrations.0002_builtin_methods").add_methods(apps, None)


@pytest.fixture
def make_campaign(dataset, builtin_methods):
    from study.models import Campaign, Method

    def make(
        methods=("nearest", "bicubic", "hr"),
        name="pilot",
        rater_links=2,
        datasets=None,
        vote_floor_ms=0,
    ):
        # No vote floor unless a test asks for one: most tests vote as fast as the client can.
        campaign = Campaign.objects.create(
            name=name, seed=7, rater_links=rater_links, vote_floor_ms=vote_floor_ms
        )
        campaign.datasets.set(datasets or [dataset])
        campaign.methods.set(Method.objects.filter(slug__in=methods))
        return campaign

    return make


def generate_and_launch(campaign, capture_on_commit):
    """Generate in-process (eager Celery; on-commit hooks run) and launch."""
    from study.generation.queue import start_generation

    with capture_on_commit(execute=True):
        start_generation(campaign)
    campaign.refresh_from_db()
    campaign.launch()
    return campaign


@pytest.fixture
def live_campaign(make_campaign, eager_celery, django_capture_on_commit_callbacks):
    """A launched campaign whose candidates were generated in-process (eager mode)."""
    return generate_and_launch(make_campaign(), django_capture_on_commit_callbacks)


@pytest.fixture
def researcher(django_user_model):
    return django_user_model.objects.create_superuser(
        "researcher", "r@example.org", "pw-researcher-1"
    )


class Worker:
    """A real `celery worker` process for the integration tests."""

    def __init__(self, env, queues="gpu,cpu", name="w1"):
        self.log = Path(env["MEDIA_ROOT"]).parent / f"worker-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        from study.management.processes import worker_command

        self.proc = subprocess.Popen(
            [*worker_command(queues, 1, name), "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole by stop()
        )
        deadline = time.monotonic() + 60
        while "ready." not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def stop(self):
        """The test is over and nothing it ran needs finishing: kill the worker and its pool at
        once (even a cold shutdown spends 4-7 s joining the pool and finalizing). Tests of a
        graceful stop signal the worker themselves."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def worker_env(broker_url, media_root, broker_dir=None):
    """Environment for a worker process that shares the test database and media folder."""
    db = django_settings.DATABASES["default"]
    env = dict(os.environ)
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    env["CELERY_BROKER_URL"] = broker_url
    env["MEDIA_ROOT"] = str(media_root)
    env["CELERY_TASK_ALWAYS_EAGER"] = "0"
    if broker_dir:
        env["SRMOS_DATA_DIR"] = str(broker_dir)
    return env


@pytest.fixture
def start_worker():
    workers = []

    def start(*args, **kwargs):
        worker = Worker(*args, **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def start_session(page, base, rater, shot=None):
    """Open the link, consent with the keyboard, and let the display check pass."""
    page.goto(f"{base}{rater.get_absolute_url()}")
    page.wait_for_selector("text=Welcome")
    if shot:
        screenshot(page, f"{shot}-1-consent")
    page.focus("input[name=consent]")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#stimulus, .calibration-item")


def wait_for_image(page, number):
    # Null-safe: the page may be between two documents (a form just submitted).
    page.wait_for_function(
        "n => { const c = document.getElementById('counter');"
        " return c !== null && c.textContent.startsWith('Image ' + n + ' of'); }",
        arg=number,
    )


def wait_until_ready(page):
    """The trial on screen can be scored: the page's script painted its image (until the script
    runs, the form's buttons are enabled for pages without JavaScript, and the image may not
    have loaded) and its buttons came alive (the floor has passed)."""
    page.wait_for_function(
        "() => { const f = document.getElementById('vote-form');"
        " return f !== null && document.body.dataset.painted === f.position.value; }"
    )
    page.wait_for_selector("#vote-form button[value='1']:enabled")


def wait_for(condition, timeout, what):
    """Poll `condition` until it returns something true, and return it; fail the test saying
    `what` after `timeout` seconds. Generous: tests never assert how fast something happens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def admin_login(page, base):
    """Log the researcher persona into the admin in a browser page."""
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "researcher")
    page.fill("#id_password", "pw-researcher-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(ROOT / "data" / "test-broker", ignore_errors=True)


__all__ = ["np", "require", "sample_image", "png_bytes", "SHARED_DATA", "CHROMIUM_ARGS"]


def get_ready(client, rater, viewport=(1920, 1080), dpr=1.0):
    """Consent, pass the display check and open the first trial page, as a rater's browser
    does before the first vote (the page hands the trial out; a vote before that is refused)."""
    client.post(f"/r/{rater.token}/consent/", {"consent": "yes"})
    response = client.post(
        f"/r/{rater.token}/display/",
        {"viewport_width": viewport[0], "viewport_height": viewport[1], "dpr": dpr},
    )
    client.get(f"/r/{rater.token}/")
    return response


@pytest.fixture
def calibrated_campaign(
    make_campaign, image_folder, eager_celery, django_capture_on_commit_callbacks
):
    """A launched campaign with a calibration set of two images (NN = 1, HR = 5)."""
    from study.datasets.importing import import_folder
    from study.models import Dataset

    import_folder("calib", image_folder(2, name="calib"), is_calibration=True)
    campaign = make_campaign()
    campaign.calibration_dataset = Dataset.objects.get(name="calib")
    campaign.calibration_images = 2
    campaign.save()
    return generate_and_launch(campaign, django_capture_on_commit_callbacks)


# A connection the main thread opens between Playwright calls (seen: a management command's, in
# a browser test) can be left outside the `connections` Django closes at the end (likely because
# asgiref's Local follows contextvars, which Playwright's sync API switches), and PostgreSQL then
# waits 5 s and refuses to drop the test database ("is being accessed by other users"). Every
# connection is tracked and closed before the test databases are dropped.
_DB_CONNECTIONS = weakref.WeakSet()


def _tracked(get_new_connection):
    def opened(self, params):
        conn = get_new_connection(self, params)
        _DB_CONNECTIONS.add(conn)
        return conn

    return opened


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    from django.db.backends.postgresql.base import DatabaseWrapper

    DatabaseWrapper.get_new_connection = _tracked(DatabaseWrapper.get_new_connection)
    yield
    for conn in list(_DB_CONNECTIONS):
        conn.close()
