"""Processes the job fault tests kill and restart: a redis-server of their own (no persistence,
so a restart loses every queued message, as a production Redis without AOF does) and Celery
workers whose work is slowed down, so that a kill lands in the middle of a job."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, require, wait_for  # noqa: F401 (the fault tests import it here)

# Short enough that each fault heals in seconds: a lease of 2 s (renewed every 0.7 s), the
# reconciler every second, a message taken for lost after 3 s of nothing moving.
FAST_HEALING = {
    "SRMOS_GENERATION_LEASE": "2",
    "SRMOS_RECONCILE_INTERVAL": "1",
    "SRMOS_REQUEUE_AFTER": "3",
    # The broker's own redelivery of a dead worker's message comes after an hour, as in
    # production: only the reconciler can heal within the tests' time.
    "CELERY_VISIBILITY_TIMEOUT": "3600",
}

WORKER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from config.celery import app
    import django
    django.setup()
    from study.generation import networks, render

    slow = float(sys.argv[1])
    upscale_all, check = render.upscale_all, networks.check

    def slow_upscale(*args, **kwargs):
        time.sleep(slow)
        return upscale_all(*args, **kwargs)

    def slow_check(*args, **kwargs):
        time.sleep(slow)
        return check(*args, **kwargs)

    render.upscale_all, networks.check = slow_upscale, slow_check
    from study.datasets import tasks as import_tasks
    run_import = import_tasks._run

    def slow_import(*args, **kwargs):
        time.sleep(slow)
        return run_import(*args, **kwargs)

    import_tasks._run = slow_import
    app.worker_main(["worker", "-Q", sys.argv[3], "-c", "1", "-n", sys.argv[2] + "@%h",
                     "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                     *(["--beat"] if sys.argv[4] == "beat" else [])])
    """
)


class OwnRedis:
    """A redis-server on its own port that a test may stop and start again, empty."""

    def __init__(self, port, folder):
        self.port, self.folder = port, Path(folder)
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self):
        """Killed, not shut down: nothing is saved, every queued message is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def own_redis(tmp_path):
    require(shutil.which("redis-server"), "redis-server is not installed (apt-get install redis)")
    port = int(os.environ.get("SRMOS_FAULT_REDIS_PORT", "18201"))
    if _port_open(port):
        pytest.fail(f"port {port} is taken: set SRMOS_FAULT_REDIS_PORT to a free one")
    server = OwnRedis(port, tmp_path)
    yield server
    server.stop()


class FaultWorker:
    """A real `celery worker` (embedding beat, hence the reconciler, when `beat`) whose every
    generation batch and model check first sleeps `slow` seconds. It runs in its own session,
    so that `kill()` takes its pool child with it, as when a machine dies."""

    def __init__(self, env, name, queues="gpu,cpu", slow=0.0, beat=True, wait=True):
        self.name = name
        self.log = Path(env["MEDIA_ROOT"]).parent / f"worker-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, str(slow), name, queues,
             "beat" if beat else "-"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        if wait:
            self.ready()

    def ready(self):
        """Wait until the worker consumes (start two without waiting, then wait for both: their
        start-ups overlap)."""
        deadline = time.monotonic() + 90
        while "ready." not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.tail()}")
            time.sleep(0.2)
        return self

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def consume(self, queue, timeout=30):
        """Serve `queue` too from now on (Celery's remote control), as a worker started for it
        would, without the start-up time of another process."""
        from config.celery import app

        deadline = time.monotonic() + timeout
        destination = [f"{self.name}@{socket.gethostname()}"]
        while not app.control.add_consumer(queue, reply=True, timeout=1.0, destination=destination):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not take queue {queue}:\n{self.tail()}")

    def stop(self):
        # A fault test needs no warm shutdown: the kill takes seconds less than beat's own stop.
        if self.proc.poll() is None:
            self.kill()

    def tail(self, n=3000):
        return self.log.read_text()[-n:]


@pytest.fixture
def fault_workers():
    workers = []

    def start(*args, **kwargs):
        worker = FaultWorker(*args, **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
