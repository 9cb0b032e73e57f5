"""The comparison viewer's page for one BSD-size image with 12 methods: time until usable.

    .venv/bin/python bench/bench_viewer.py [--runs 5]

Builds a throw-away campaign in a temporary SQLite database: one BSD200 image (481x321, from
../shared/data, or scikit-image's 512x512 astronaut where that is absent), 4 built-in methods
(nearest, bicubic, lanczos, HR) and 8 imported ones (12 columns plus the LR input), generated
in-process; serves it with gunicorn; then Chromium (headless, logged in as staff) opens the
viewer page and the bench measures from navigation start until every panel's image has loaded
(the page sets `data-all-loaded`). Prints each run and the median; nothing is asserted.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_keypress import CHROMIUM, CHROMIUM_ARGS, ROOT, embedded_env, free_port  # noqa: E402

SHARED = Path(os.environ.get("SRMOS_SHARED_DATA", ROOT.parent / "shared" / "data"))

PREPARE = """
import django
django.setup()
from pathlib import Path
import numpy as np
from PIL import Image
from django.contrib.auth import get_user_model
from django.core.management import call_command
from study.datasets.importing import import_folder, read_folder
from study.datasets.results import import_results
from study.generation.queue import start_generation
from study.models import Campaign, Dataset, Method
call_command("migrate", verbosity=0)
get_user_model().objects.create_superuser("bench", "b@example.org", "pw-bench-1")
src, data = Path("{source}"), Path("{data}")
(data / "hr").mkdir()
Image.open(src).convert("RGB").save(data / "hr" / "photo.png")
import_folder("bsd", data / "hr")
hr = np.asarray(Image.open(data / "hr" / "photo.png"))
for i in range(8):
    out = data / f"m{{i}}"
    out.mkdir()
    noisy = np.clip(hr.astype(int) + np.random.default_rng(i).integers(-9, 10, hr.shape), 0, 255)
    Image.fromarray(noisy.astype("uint8")).save(out / "photo.png")
    import_results("bsd", f"imported-{{i}}", read_folder(out), lr_input="matlab-bicubic")
c = Campaign.objects.create(name="viewer", rater_links=0)
c.datasets.set(Dataset.objects.filter(name="bsd"))
c.methods.set(Method.objects.filter(slug__in=["nearest", "bicubic", "lanczos", "hr"]) |
              Method.objects.filter(slug__startswith="imported-"))
start_generation(c)
print(c.pk, c.methods.count())
"""


def source_image():
    bsd = sorted((SHARED / "BSD200" / "HR").glob("*.png"))
    if bsd:
        return bsd[0]
    from PIL import Image
    from skimage import data

    path = Path(tempfile.gettempdir()) / "srmos-bench-astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def measure(base, pk, runs):
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "pw-bench-1")
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")
        for run in range(runs):
            # Cold: the browser's cache is emptied before each run (the login stays).
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.clearBrowserCache")
            t0 = time.perf_counter()
            page.goto(f"{base}/admin/study/campaign/{pk}/viewer/")
            page.wait_for_function("() => document.body.dataset.allLoaded === 'yes'")
            times.append((time.perf_counter() - t0) * 1000)
            panels = page.evaluate("() => document.body.dataset.panels")
            print(f"run {run + 1}: {times[-1]:.0f} ms, {panels} images (cold cache)")
        browser.close()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    source = source_image()
    with tempfile.TemporaryDirectory() as data:
        env = embedded_env(data)
        out = subprocess.run(
            [sys.executable, "-c", PREPARE.format(source=source, data=data)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode:
            sys.exit(f"preparing the campaign failed:\n{out.stderr}")
        pk, n_methods = out.stdout.split()[-2:]
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
             f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(2)
            times = measure(f"http://127.0.0.1:{port}", pk, args.runs)
        finally:
            server.terminate()
            server.wait(10)
    print(f"image: {source.name}; {n_methods} methods + the LR input; {os.cpu_count()} cores")
    print(
        f"viewer usable (every image loaded), cold cache: median {statistics.median(times):.0f} ms"
    )


if __name__ == "__main__":
    main()
