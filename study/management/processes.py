"""Start the web server and a Celery worker as child processes, and stop them together."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def worker_command(queues="gpu,cpu", concurrency=1, name="local"):
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
        "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO",
    ]  # fmt: skip


def start_worker(queues="gpu,cpu", concurrency=1, name="local"):
    return subprocess.Popen(worker_command(queues, concurrency, name), cwd=ROOT)


def start_web(bind="127.0.0.1:8000", workers=2):
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
