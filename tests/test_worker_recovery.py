"""A worker SIGKILLed in the middle of a task: another worker finishes the campaign.

Real `celery worker` processes on Redis. The broker hands the killed worker's unacked message to
the survivor after the visibility timeout; the survivor finds the candidate `running` with a
lease its dead owner no longer renews, takes it over, and makes it once, at the same path.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from study.generation.queue import start_generation
from study.models import Campaign, Candidate
from tests.conftest import ROOT, wait_for, worker_env
from tests.test_worker import use_broker, wait_until_ready  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.redis]

# Each candidate takes at least this long, so the kill lands in the middle of one.
SLOW_SECONDS = 2.0

WORKER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from config.celery import app
    import django
    django.setup()
    from study.generation import render as generation

    real = generation.upscale_all

    def slow(*args, **kwargs):
        time.sleep(float(sys.argv[1]))
        return real(*args, **kwargs)

    generation.upscale_all = slow
    app.worker_main(["worker", "-Q", "gpu,cpu", "-c", "1", "-n", sys.argv[2] + "@%h",
                     "--loglevel", "INFO", "--without-gossip", "--without-mingle"])
    """
)


class SlowWorker:
    def __init__(self, env, name):
        self.log = Path(env["MEDIA_ROOT"]).parent / f"worker-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # Its own session, so that killing the group takes the pool child with it, as when a
        # machine dies.
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, str(SLOW_SECONDS), name],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while "ready." not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def slow_workers():
    workers = []

    def start(env, name):
        worker = SlowWorker(env, name)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def test_a_killed_worker_s_candidate_is_finished_by_another(
    make_campaign,
    slow_workers,
    media_root,
    redis_url,
    use_broker,  # noqa: F811
):
    use_broker(redis_url, {"visibility_timeout": 4})
    env = worker_env(redis_url, media_root)
    # A short visibility timeout and lease so that recovery takes seconds, not an hour.
    env.update(
        CELERY_VISIBILITY_TIMEOUT="4",
        CELERY_RESTORE_INTERVAL="1",
        CELERY_RESTORE_THROTTLE="1",
        SRMOS_GENERATION_LEASE="2",
    )
    first = slow_workers(env, "doomed")
    campaign = make_campaign(methods=("nearest", "bicubic"))
    assert start_generation(campaign) == 6

    wait_for(
        lambda: campaign.candidates.filter(status=Candidate.RUNNING).exists(), 60, "a running task"
    )
    time.sleep(0.2)  # inside the task's SLOW_SECONDS
    first.kill()
    (running,) = campaign.candidates.filter(status=Candidate.RUNNING)
    assert running.attempts == 1

    slow_workers(env, "survivor")
    wait_until_ready(campaign, timeout=120)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.READY
    assert campaign.candidates.count() == 6
    assert set(campaign.candidates.values_list("status", flat=True)) == {Candidate.DONE}
    running.refresh_from_db()
    assert running.attempts == 2, "the killed attempt was taken over, not repeated from scratch"
    assert (
        list(campaign.candidates.exclude(pk=running.pk).values_list("attempts", flat=True))
        == [1] * 5
    )
    files = sorted(p.name for p in (media_root / "candidates" / str(campaign.pk)).iterdir())
    assert files == sorted(
        f"{pid}.png" for pid in campaign.candidates.values_list("public_id", flat=True)
    ), "one file per candidate, no orphans"


def test_a_killed_pool_process_s_candidate_is_requeued_and_taken_over(
    make_campaign,
    slow_workers,
    media_root,
    redis_url,
    use_broker,  # noqa: F811
):
    use_broker(redis_url, {"visibility_timeout": 3600})
    env = worker_env(redis_url, media_root)
    env.update(SRMOS_GENERATION_LEASE="2")
    worker = slow_workers(env, "parent")
    campaign = make_campaign(methods=("nearest",))
    assert start_generation(campaign) == 3
    running = wait_for(
        lambda: campaign.candidates.filter(status=Candidate.RUNNING).first(), 60, "a running task"
    )
    # Only the pool child dies: the worker sees WorkerLostError and requeues the task at once
    # (task_reject_on_worker_lost); when it comes back it waits out the lease if still live
    # (CandidateBusy), then takes the candidate over.
    children = Path(f"/proc/{worker.proc.pid}/task/{worker.proc.pid}/children").read_text()
    os.kill(int(children.split()[0]), signal.SIGKILL)
    wait_until_ready(campaign, timeout=120)
    running.refresh_from_db()
    assert running.attempts == 2
    assert set(campaign.candidates.values_list("status", flat=True)) == {Candidate.DONE}
    files = sorted(p.name for p in (media_root / "candidates" / str(campaign.pk)).iterdir())
    assert len(files) == 3
    assert "WorkerLostError" in worker.log.read_text()
