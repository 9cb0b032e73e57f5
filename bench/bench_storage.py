"""Rater images streamed from S3-compatible storage against the file system, in one run: the
next-image time and the vote path, through gunicorn and PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_storage.py

Creates (and afterwards drops) the database `srmos_bench_storage` on that server, a live campaign
whose candidate PNGs are stored twice, under a MEDIA_ROOT folder and in a bucket of an
S3-compatible server (moto, started here on a local port; its own process, as a MinIO would be),
and serves the same database with two gunicorns, one per storage. On each, `--raters` sessions
walk their trials in parallel as the rating page does: the trial's image (GET, the page's
prefetch of the next one), then the vote (JSON POST). Each server is warmed up first (a storage
client per server thread). Prints p50/p95/p99 per storage; `--raters 1` gives the latency
without contention.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_votes import Client, percentile, psql_command  # noqa: E402

DB_NAME = "srmos_bench_storage"
BUCKET = "srmos-bench"

PREPARE = """
import io, sys
import django
django.setup()
import numpy as np
from PIL import Image
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from skimage import data
from study.models import Campaign, Candidate, Dataset, Method, Rater, SourceImage

n_images, size, links = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
call_command("migrate", verbosity=0)
photo = data.astronaut()
rng = np.random.default_rng(0)

def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()

ds = Dataset.objects.create(name="bench")
methods = list(Method.objects.filter(slug__in=["nearest", "bicubic", "hr"]))
campaign = Campaign.objects.create(name="bench", rater_links=0, min_view_ms=0, vote_floor_ms=0,
                                   gold_items=False, retest_share=0, metrics=[])
campaign.datasets.add(ds)
campaign.methods.set(methods)
for i in range(n_images):
    y, x = rng.integers(0, photo.shape[0] - size, 2)
    crop = photo[y:y + size, x:x + size].copy()
    image = SourceImage.objects.create(dataset=ds, name=f"i{i}", original_name=f"i{i}.png",
                                       file=f"bench/i{i}.png", width=size, height=size,
                                       sha256=f"{i:064d}")
    for j, method in enumerate(methods):
        candidate = Candidate(campaign=campaign, image=image, method=method,
                              status=Candidate.DONE, width=size, height=size)
        # A little noise per method, so that the versions differ in length as real ones do.
        noisy = np.clip(crop.astype(int) + rng.integers(-4 * j, 4 * j + 1, crop.shape), 0, 255)
        candidate.save()
        name = candidate.output_path()
        default_storage.save(name, ContentFile(png(noisy.astype(np.uint8))))
        Candidate.objects.filter(pk=candidate.pk).update(file=name)
campaign.status = Campaign.READY
campaign.rater_links = links
campaign.save()
campaign.launch()
Rater.objects.update(consented_at=timezone.now())
print(",".join(campaign.raters.values_list("token", flat=True)))
"""

# Copies what the first run stored under MEDIA_ROOT into the bucket, under the same names.
COPY = """
import sys
from pathlib import Path
import django
django.setup()
from django.core.files import File
from django.core.files.storage import default_storage
media = Path(sys.argv[1])
for path in sorted(media.rglob("*.png")):
    with path.open("rb") as fh:
        default_storage.save(str(path.relative_to(media)), File(fh))
print("copied")
"""


class ImageAndVoteClient(Client):
    """A rater's page: the trial's image, then its vote; each timed on its own."""

    def __init__(self, host, port, token, go):
        super().__init__(host, port, token, 0, 0, False, 0, go)
        self.images, self.votes = [], []

    def run(self):
        import http.client

        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        cookie, csrf = self.get_ready(conn)
        self.ready.set()
        self.go.wait()
        position = 0
        while True:
            t0 = time.perf_counter()
            response, body = self.request(
                conn, "GET", f"/r/{self.token}/t/{position}.png", headers={"Cookie": cookie}
            )
            if response.status != 200:
                if response.status != 404:
                    self.errors += 1
                break  # past the last trial
            self.images.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            if not self.send(conn, position, cookie, csrf):
                self.errors += 1
                break
            self.votes.append((time.perf_counter() - t0) * 1000)
            position += 1


def walk(url, tokens):
    parsed = urlparse(url)
    go = threading.Event()
    clients = [ImageAndVoteClient(parsed.hostname, parsed.port, t, go) for t in tokens]
    for c in clients:
        c.start()
    for c in clients:
        c.ready.wait()
    start = time.monotonic()
    go.set()
    for c in clients:
        c.join()
    seconds = time.monotonic() - start
    images = [x for c in clients for x in c.images]
    votes = [x for c in clients for x in c.votes]
    return {
        "images": images,
        "votes": votes,
        "seconds": seconds,
        "errors": sum(c.errors for c in clients),
        "problems": {k: v for c in clients for k, v in c.problems.items()},
    }


def warm_up(url, token, n):
    """Every server thread's first image pays for its storage client (boto3 builds one per
    thread, in about a second): fetch one image n times in parallel before the clock starts."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    parsed = urlparse(url)
    go = threading.Event()
    go.set()
    client = ImageAndVoteClient(parsed.hostname, parsed.port, token, go)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    cookie, _ = client.get_ready(conn)

    def fetch(_):
        c = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        c.request("GET", f"/r/{token}/t/0.png", headers={"Cookie": cookie})
        c.getresponse().read()
        c.close()

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(fetch, range(n)))


def start_moto(port):
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        sys.exit(f"moto did not start on port {port}")
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    return proc, endpoint


def start_gunicorn(env, port, workers, threads):
    # Its log (a 404 ends each session: the image after the last) goes to a file beside the media.
    log = Path(env["SRMOS_DATA_DIR"]) / f"gunicorn-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
            "--worker-class", "gthread", "--log-level", "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    proc.log = log
    return proc


def wait_up(url, proc):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"gunicorn for {url} exited:\n{proc.log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"gunicorn for {url} did not start")


def run_python(script, env, *args):
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"preparing the bench failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def main():
    args = parse_args()
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not server.startswith("postgres"):
        sys.exit(f"bench_storage needs DATABASE_URL=postgres://... (to create {DB_NAME} on)")
    db_url = f"{server.rsplit('/', 1)[0]}/{DB_NAME}"
    psql = psql_command(server)
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {DB_NAME}"], check=True)
    subprocess.run([*psql, f"CREATE DATABASE {DB_NAME}"], check=True)
    moto, endpoint = start_moto(args.s3_port)
    servers = []
    try:
        with tempfile.TemporaryDirectory(prefix="srmos-bench-storage-") as tmp:
            base = {
                k: v for k, v in os.environ.items() if not k.startswith(("SRMOS_S3_", "MEDIA_"))
            }
            fs_env = dict(
                base,
                DJANGO_SETTINGS_MODULE="config.settings",
                DATABASE_URL=db_url,
                MEDIA_ROOT=f"{tmp}/media",
                SRMOS_DATA_DIR=f"{tmp}/data",
                DEBUG="0",
                SECRET_KEY="bench-only-secret",
                DB_CONN_MAX_AGE="60",
                LOG_LEVEL="WARNING",
                CELERY_TASK_ALWAYS_EAGER="1",
            )
            s3_env = dict(
                fs_env,
                MEDIA_ROOT=f"{tmp}/s3-media-unused",
                SRMOS_S3_BUCKET=BUCKET,
                SRMOS_S3_ENDPOINT_URL=endpoint,
                SRMOS_S3_ACCESS_KEY_ID="bench",
                SRMOS_S3_SECRET_ACCESS_KEY="bench",
            )
            tokens = run_python(PREPARE, fs_env, args.images, args.size, 2 * args.raters + 2)
            *tokens, spare_fs, spare_s3 = tokens.split(",")
            run_python(COPY, s3_env, f"{tmp}/media")
            runs = [("file system", fs_env, args.port), ("S3 (moto)", s3_env, args.port + 1)]
            for _, env, port in runs:
                proc = start_gunicorn(env, port, args.workers, args.threads)
                servers.append(proc)
                wait_up(f"http://127.0.0.1:{port}", proc)
            for (_, _, port), spare in zip(runs, (spare_fs, spare_s3), strict=True):
                warm_up(f"http://127.0.0.1:{port}", spare, 4 * args.workers * args.threads)
            # The same load on each, one after the other, each on its own raters.
            half = len(tokens) // 2
            results = {
                name: walk(f"http://127.0.0.1:{port}", group)
                for (name, _, port), group in zip(runs, (tokens[:half], tokens[half:]), strict=True)
            }
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(20)
        moto.terminate()
        moto.wait(10)
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {DB_NAME}"], check=True)
    print_results(args, results)


def print_results(args, results):
    print(
        f"machine: {os.cpu_count()} CPU cores; gunicorn {args.workers} workers x {args.threads} "
        f"threads per storage; {args.raters} raters in parallel, {args.images} images x 3 "
        f"methods, {args.size}x{args.size} PNGs; S3 = moto on 127.0.0.1 (its own process)"
    )
    print(f"{'storage':<14}{'path':<20}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean':>8}")
    for name, r in results.items():
        for path, values in (("next image (GET)", r["images"]), ("vote (JSON POST)", r["votes"])):
            mean = statistics.fmean(values) if values else float("nan")
            print(
                f"{name:<14}{path:<20}{len(values):>6}{percentile(values, 0.5):>9.1f}"
                f"{percentile(values, 0.95):>9.1f}{percentile(values, 0.99):>9.1f}{mean:>8.1f}"
            )
        print(f"{'':<14}{'errors':<20}{r['errors']:>6}   wall {r['seconds']:.1f} s")
        for problem, n in r["problems"].items():
            print(f"{'':<14}  {n} x {problem}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=8, help="sessions walked in parallel")
    parser.add_argument("--images", type=int, default=20, help="source images (x 3 methods)")
    parser.add_argument("--size", type=int, default=256, help="each PNG's side in pixels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=18760, help="this port and the next")
    parser.add_argument("--s3-port", type=int, default=18762)
    return parser.parse_args()


if __name__ == "__main__":
    main()
