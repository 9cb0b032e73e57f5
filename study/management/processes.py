"""Start the web server and a Celery worker as child processes, and stop them together."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def worker_command(queues="gpu,cpu", concurrency=1, name="local", beat=False):
    """`beat`: embed Celery beat, which runs the reconciler (study.generation.reconcile); one
    process per deployment should, so only the single worker of `demo` and `serve` does."""
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
        "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO",
        *(["--beat"] if beat else []),
    ]  # fmt: skip


def start_worker(queues="gpu,cpu", concurrency=1, name="local"):
    # The only worker: it runs the reconciler too, so lost or abandoned jobs heal by themselves.
    return subprocess.Popen(worker_command(queues, concurrency, name, beat=True), cwd=ROOT)


def web_debug(debug=None):
    """Whether the web server runs with DEBUG on: only when asked, by `debug` (serve's
    --debug) or by DEBUG set in the environment. A traceback page is never the default on a
    port others can reach."""
    if debug is not None:
        return debug
    return bool(os.environ.get("DEBUG")) and settings.DEBUG


def start_web(bind="127.0.0.1:8000", workers=2, debug=None):
    env = dict(os.environ, DEBUG="1" if web_debug(debug) else "0")
    # Without DEBUG the settings want a key: the one this process uses (the embedded default
    # keeps it in the data folder), so sessions and signed cookies carry over.
    env["SECRET_KEY"] = env.get("SECRET_KEY") or settings.SECRET_KEY
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            bind,
            "--workers",
            str(workers),
            "--access-logfile",
            "-",
        ],
        cwd=ROOT,
        env=env,
    )


def wait_for_worker(timeout=60):
    """Block until a worker answers a ping; raises RuntimeError when none does."""
    from config.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1.0):
            return
        time.sleep(0.5)
    raise RuntimeError(f"no Celery worker answered within {timeout} s")


def supervise(processes):
    """Wait until Ctrl-C/SIGTERM or until any child exits, then stop all children."""
    stop = {"now": False}

    def handler(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    try:
        while not stop["now"] and all(p.poll() is None for p in processes):
            time.sleep(0.5)
    finally:
        stop_all(processes)
    return 0 if stop["now"] else 1


def stop_all(processes, timeout=20):
    """SIGTERM (a Celery worker finishes its task: warm shutdown), then SIGKILL after timeout."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


os.environ.setdefault("PYTHONUNBUFFERED", "1")
