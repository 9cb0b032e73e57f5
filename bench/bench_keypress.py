"""Key press to next image painted, in headless Chromium: the rater's felt speed.

    .venv/bin/python bench/bench_keypress.py [--trials 40]

Builds a throw-away campaign in a temporary SQLite database (scikit-image photos, nearest,
bicubic and HR at x4, generated in-process), serves it with gunicorn, and has Chromium rate it
with the keyboard as a person would: wait until the image is painted and the buttons come alive,
press a key, and measure (in the page, `performance.now()`) the time until the next image is
decoded and painted. Prints the median and the 90th percentile; nothing is asserted.
"""

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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

PREPARE = """
import django
django.setup()
from django.core.management import call_command
from study.generation.queue import start_generation
from study.datasets.importing import import_folder
from study.management.sample import write_sample_photos
from study.models import Campaign, Dataset, Method
call_command("migrate", verbosity=0)
import_folder("photos", write_sample_photos("{data}/photos"))
c = Campaign.objects.create(name="keypress", rater_links=1, retest_share=0.0)
c.datasets.set(Dataset.objects.filter(name="photos"))
c.methods.set(Method.objects.filter(slug__in=["nearest", "bicubic", "hr"]))
start_generation(c)
c.refresh_from_db()
c.launch()
print(c.raters.first().get_absolute_url())
"""


def embedded_env(data):
    """Environment for a throw-away srmos on SQLite in `data`, generating in-process."""
    return dict(
        os.environ,
        SRMOS_DATA_DIR=data,
        DATABASE_URL=f"sqlite:///{data}/db.sqlite3",
        MEDIA_ROOT=f"{data}/media",
        CELERY_TASK_ALWAYS_EAGER="1",
        DJANGO_SETTINGS_MODULE="config.settings",
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(env, data):
    out = subprocess.run(
        [sys.executable, "-c", PREPARE.format(data=data)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"preparing the campaign failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def rate(url, trials):
    """Rate `trials` images by keyboard; returns the page's key-to-paint latencies (ms)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.focus("input[name=consent]")
        page.keyboard.press("Space")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_selector("#stimulus")
        for i in range(trials):
            page.wait_for_function("n => document.body.dataset.painted === String(n)", arg=i)
            page.wait_for_selector("#vote-form button[value='1']:enabled")
            page.keyboard.press(str(1 + i % 5))
        page.wait_for_function(
            "n => window.srmosLatencies && window.srmosLatencies.length >= n", arg=trials - 1
        )
        latencies = page.evaluate("() => window.srmosLatencies")
        browser.close()
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=14, help="images to rate (15 at most)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as data:
        env = embedded_env(data)
        path = prepare(env, data)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
             f"127.0.0.1:{port}", "--workers", "2"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(2)
            latencies = rate(f"http://127.0.0.1:{port}{path}", min(args.trials, 15))
        finally:
            server.terminate()
            server.wait(10)
    latencies.sort()
    p90 = latencies[int(0.9 * (len(latencies) - 1))]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    print(
        f"key press -> next image painted over {len(latencies)} trials: "
        f"median {statistics.median(latencies):.1f} ms, p90 {p90:.1f} ms, "
        f"max {latencies[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
