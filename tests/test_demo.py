"""`make demo`'s command, run for real: the embedded default, a real worker, gunicorn, Ctrl-C."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, run_python

pytestmark = pytest.mark.slow


def embedded_env(data_dir):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT")
    }
    env["SRMOS_DATA_DIR"] = str(data_dir)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env, *args, timeout=600):
    return run_python("manage.py", *args, env=env, timeout=timeout)


def test_the_demo_prepares_serves_and_stops_with_ctrl_c(tmp_path):
    env = embedded_env(tmp_path / "data")
    assert manage(env, "migrate", "--noinput").returncode == 0
    first = manage(env, "demo", "--no-serve", "--methods", "nearest,bicubic,hr")
    assert first.returncode == 0, first.stderr
    password = re.search(r"user: admin  password: (\S+)", first.stdout).group(1)
    link = re.search(r"rater link: http://127.0.0.1:8000(/r/\S+/)", first.stdout).group(1)
    assert "added 26 simulated raters" in first.stdout
    assert not list((tmp_path / "data" / "broker" / "out").iterdir())  # every task consumed

    # Running it again is safe and fast: the same account, campaign and link.
    again = manage(env, "demo", "--no-serve")
    assert again.returncode == 0, again.stderr
    assert f"password: {password}" in again.stdout and link in again.stdout
    assert "added 26 simulated raters" not in again.stdout

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        for _ in range(120):
            try:
                page = (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{link}", timeout=2)
                    .read()
                    .decode()
                )
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the demo did not serve")
        assert "Welcome" in page
        assert (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/static/study/session.js").status == 200
        )
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        output, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert server.returncode == 0, output
    # Web and worker stopped together; the worker's embedded beat (a child of the worker) may
    # take a moment longer to finish its own shutdown.
    deadline = time.monotonic() + 15
    while True:
        leftovers = subprocess.run(
            ["pgrep", "-s", str(server.pid)], capture_output=True, text=True
        ).stdout
        if not leftovers.strip() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert leftovers.strip() == ""
