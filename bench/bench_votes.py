"""The vote path under load: N simulated raters against gunicorn + PostgreSQL, one vote every 2 s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_votes.py

Creates (and afterwards drops) the database `srmos_bench` (--database) on that server, a campaign with one
rater per simulated client, serves it with gunicorn, and reports throughput, p50/p95/p99
latency and votes lost, next to a bare Django view (/healthz, no database) served the same way.
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def prepare(db_url, raters, trials_per_rater, schema_from_models=False):
    """Create the bench database and a live campaign; returns the rater tokens."""
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        CELERY_TASK_ALWAYS_EAGER="1",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    script = f"""
import django, os
django.setup()
from django.utils import timezone
from study.models import Campaign, Candidate, Dataset, Method, Rater, SourceImage, Trial
from django.core.management import call_command
if {schema_from_models!r}:
    # A tree whose new migrations are not merged yet: the schema straight from the models.
    import importlib
    from django.apps import apps
    from django.db import connection
    with connection.schema_editor() as editor:
        for model in apps.get_models():
            editor.create_model(model)
    importlib.import_module("study.migrations.0002_builtin_methods").add_methods(apps, None)
else:
    call_command("migrate", verbosity=0)
ds = Dataset.objects.create(name="bench")
images = [SourceImage(dataset=ds, name=f"i{{i}}", original_name=f"i{{i}}.png", file="x.png",
          width=64, height=64, sha256=f"{{i:064d}}") for i in range({trials_per_rater})]
SourceImage.objects.bulk_create(images)
c = Campaign.objects.create(name="bench", status="live", rater_links=0, min_view_ms=0)
c.datasets.add(ds)
m = Method.objects.get(slug="bicubic")
c.methods.add(m)
Candidate.objects.bulk_create([Candidate(campaign=c, image=i, method=m, status="done", file="x.png",
    width=64, height=64) for i in ds.images.all()])
c.status = "ready"; c.save(); c.rater_links = {raters}; c.save(); c.launch()
Rater.objects.update(consented_at=timezone.now())
print(",".join(c.raters.values_list("token", flat=True)))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"preparing the bench campaign failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1].split(",")


def count_votes(db_url):
    env = dict(os.environ, DATABASE_URL=db_url, DJANGO_SETTINGS_MODULE="config.settings")
    script = "import django; django.setup(); from study.models import Trial; print(Trial.objects.answered().count())"
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


class Client(threading.Thread):
    def __init__(self, host, port, token, interval, duration, bare, offset, go):
        super().__init__(daemon=True)
        self.host, self.port, self.token = host, port, token
        self.interval, self.duration, self.bare = interval, duration, bare
        # Every client gets ready first; then all start together, each `offset` s after `go`,
        # so the votes are spread evenly over the interval rather than sent in bursts.
        self.offset, self.go, self.ready = offset, go, threading.Event()
        self.latencies, self.errors, self.stored = [], 0, 0
        self.problems = {}

    def request(self, conn, method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()

    def send(self, conn, position, cookie, csrf):
        if self.bare:
            response, _ = self.request(conn, "GET", "/healthz")
            return response.status == 200
        body = urlencode({"position": position, "score": 1 + position % 5, "duration_ms": 1500})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "Cookie": cookie,
            "X-CSRFToken": csrf,
        }
        response, data = self.request(conn, "POST", f"/r/{self.token}/vote/", body, headers)
        ok = response.status == 200 and json.loads(data)["status"] in ("stored", "duplicate")
        if not ok:
            key = f"{response.status} {data[:80]!r}"
            self.problems[key] = self.problems.get(key, 0) + 1
        return ok

    def get_ready(self, conn):
        """As a rater's browser: open the link, pass the display check, open the first trial
        (the server takes votes only in that order). Returns the cookie header and CSRF token."""
        cookies = {}

        def keep(response):
            for k, h in response.getheaders():
                if k.lower() == "set-cookie":
                    name, value = h.split(";", 1)[0].split("=", 1)
                    cookies[name] = value
            return "; ".join(f"{k}={v}" for k, v in cookies.items())

        response, body = self.request(conn, "GET", f"/r/{self.token}/")
        cookie = keep(response)
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        csrf = match.group(1).decode() if match else ""
        form = urlencode({"viewport_width": 1920, "viewport_height": 1080, "dpr": 1})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie,
            "X-CSRFToken": csrf,
        }
        response, _ = self.request(conn, "POST", f"/r/{self.token}/display/", form, headers)
        cookie = keep(response)
        response, _ = self.request(conn, "GET", f"/r/{self.token}/", headers={"Cookie": cookie})
        return keep(response), csrf

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        cookie, csrf = "", ""
        if not self.bare:
            cookie, csrf = self.get_ready(conn)
        self.ready.set()
        self.go.wait()
        time.sleep(max(0.0, self.go.start_at + self.offset - time.monotonic()))
        end = time.monotonic() + self.duration
        position = 0
        next_at = time.monotonic()
        while time.monotonic() < end:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += self.interval
            t0 = time.perf_counter()
            for attempt in (1, 2):
                try:
                    ok = self.send(conn, position, cookie, csrf)
                    break
                except (OSError, http.client.HTTPException) as exc:
                    # An idle keep-alive connection the server closed: reconnect and resend,
                    # as the rater page does (the server stores a resent vote once).
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                    if attempt == 2:
                        key = type(exc).__name__
                        self.problems[key] = self.problems.get(key, 0) + 1
            if ok and not self.bare:
                self.stored += 1
                position += 1
            self.latencies.append((time.perf_counter() - t0) * 1000)
            if not ok:
                self.errors += 1


def run_load(url, tokens, interval, duration, bare):
    parsed = urlparse(url)
    go = threading.Event()
    clients = [
        Client(
            parsed.hostname,
            parsed.port,
            t,
            interval,
            duration,
            bare,
            i * interval / len(tokens),
            go,
        )
        for i, t in enumerate(tokens)
    ]
    for c in clients:
        c.start()
    for c in clients:
        c.ready.wait()
    go.start_at = time.monotonic() + 1
    go.set()
    for c in clients:
        c.join()
    latencies = [x for c in clients for x in c.latencies]
    return {
        "requests": len(latencies),
        "throughput_per_s": len(latencies) / duration,
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
        "errors": sum(c.errors for c in clients),
        "stored": sum(c.stored for c in clients),
        "problems": {
            k: sum(c.problems.get(k, 0) for c in clients) for c in clients for k in c.problems
        },
    }


def main():
    args = parse_args()
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not server.startswith("postgres"):
        sys.exit(
            "bench_votes needs DATABASE_URL=postgres://... (a PostgreSQL server to create srmos_bench on)"
        )
    base = server.rsplit("/", 1)[0]
    db_url = f"{base}/{args.database}"
    psql = psql_command(server)
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {args.database}"], check=True)
    subprocess.run([*psql, f"CREATE DATABASE {args.database}"], check=True)
    trials = int(args.duration / args.interval) + 5
    tokens = prepare(db_url, args.raters, trials, args.schema_from_models)

    load_before = os.getloadavg()
    gunicorn = start_gunicorn(db_url, args.port, args.workers, args.threads)
    try:
        # Give the workers time to boot before the clock starts.
        time.sleep(4)
        url = f"http://127.0.0.1:{args.port}"
        bare = run_load(url, tokens, args.interval, args.duration, bare=True)
        votes = run_load(url, tokens, args.interval, args.duration, bare=False)
    finally:
        gunicorn.terminate()
        gunicorn.wait(20)
    args.load = (load_before, os.getloadavg())
    in_db = count_votes(db_url)
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {args.database}"], check=True)
    print_results(args, bare, votes, in_db)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=200)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--database", default="srmos_bench", help="made and dropped again (default: %(default)s)"
    )
    parser.add_argument(
        "--schema-from-models",
        action="store_true",
        help="build the schema from the models instead of migrating (unmerged migrations)",
    )
    return parser.parse_args()


def psql_command(server):
    """psql connected to the server's admin database, ready for one `-c` statement."""
    admin = urlparse(server)
    return [
        "psql",
        "-h",
        admin.hostname,
        "-p",
        str(admin.port or 5432),
        "-U",
        admin.username or "postgres",
        "-d",
        admin.path.lstrip("/") or "postgres",
        "-q",
        "-c",
    ]


def start_gunicorn(db_url, port, workers, threads):
    """Serve the app on the bench database as production would (gthread workers, DEBUG off)."""
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        DEBUG="0",
        SECRET_KEY="bench-only-secret",
        DB_CONN_MAX_AGE="60",
        LOG_LEVEL="WARNING",
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--log-level",
            "warning",
            *os.environ.get("BENCH_GUNICORN_EXTRA", "").split(),
        ],
        cwd=ROOT,
        env=env,
    )


def print_results(args, bare, votes, in_db):
    """The figures table, any problems the clients saw, and the votes lost on the way."""
    print(
        f"machine: {os.cpu_count()} CPU cores; gunicorn {args.workers} workers x {args.threads} threads; "
        f"{args.raters} raters, one request every {args.interval:.1f} s each, {args.duration:.0f} s"
    )
    # The machine may be shared: the load beside the figures says how quiet it was.
    before, after = args.load
    print(
        f"load average (1/5/15 min) before: {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}; "
        f"after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}"
    )
    print(f"{'path':<24}{'req':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r in (("bare view (/healthz)", bare), ("vote (JSON POST)", votes)):
        print(
            f"{name:<24}{r['requests']:>7}{r['throughput_per_s']:>8.1f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['errors']:>8}"
        )
    for name, r in (("bare", bare), ("vote", votes)):
        for problem, n in r["problems"].items():
            print(f"  {name}: {n} x {problem}")
    # Acknowledged but absent rows would mean the vote path lies to the rater page.
    lost = votes["stored"] - in_db
    print(
        f"votes acknowledged as stored: {votes['stored']}; rows in the database: {in_db}; lost: {lost}"
    )


if __name__ == "__main__":
    main()
