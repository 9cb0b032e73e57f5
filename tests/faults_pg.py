"""A private PostgreSQL cluster for the fault tests: started, restarted and stopped by the
test alone, so no other test (nor the shared server) feels it.

The cluster lives in a temporary folder, owned by the `postgres` user when the tests run as
root (PostgreSQL refuses to run as root), and listens on 127.0.0.1 and a socket in its folder.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PG_BIN_DIRS = [Path(p) for p in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")]


def closed_port():
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin():
    """The folder with initdb and pg_ctl, or None."""
    env_dir = os.environ.get("SRMOS_PG_BIN")
    for folder in ([Path(env_dir)] if env_dir else []) + PG_BIN_DIRS:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def missing():
    """Why a private cluster cannot be made here, or "" when it can."""
    if pg_bin() is None:
        return "PostgreSQL's initdb/pg_ctl are not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root needs runuser to start PostgreSQL as the postgres user"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a postgres user to own the cluster"
    return ""


class Cluster:
    """One PostgreSQL cluster in `folder`, listening on 127.0.0.1:`port`."""

    def __init__(self, folder, port):
        self.folder, self.port = Path(folder), port
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.bin = pg_bin()

    @property
    def url_base(self):
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def url(self, name):
        return f"{self.url_base}/{name}"

    def _run(self, *args, check=True, timeout=120):
        command = [str(self.bin / args[0]), *map(str, args[1:])]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=timeout)

    def init(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            os.chmod(self.folder, 0o700)
        self._run(
            "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\nfsync = off\n"
                "max_connections = 200\nshared_buffers = 32MB\n"
            )
        return self

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")
        self.wait_ready()

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self, mode="fast"):
        self._run(
            "pg_ctl", "-D", self.data, "-l", self.log, "-m", mode, "-w", "-t", "60", "restart"
        )
        self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not come up:\n{self.log.read_text()[-2000:]}")

    def create_database(self, name):
        self._run("psql", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", "-q",
                  "-c", f"CREATE DATABASE {name}")  # fmt: skip

    def destroy(self):
        self.stop(mode="immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


# Run in a subprocess with DATABASE_URL pointing at the private cluster: the schema straight from
# the models (as pytest's --nomigrations does; no other helper's migrations in the way), the
# built-in methods, and a live campaign whose candidates were made in-process (eager Celery).
PREPARE = """
import importlib, sys
import django
django.setup()
from django.apps import apps
from django.db import connection
from django.utils import timezone
with connection.schema_editor() as editor:
    for model in apps.get_models():
        editor.create_model(model)
importlib.import_module("study.migrations.0002_builtin_methods").add_methods(apps, None)
from study.datasets.importing import import_folder
from study.generation.queue import start_generation
from study.models import Campaign, Dataset, Method
folder, links = sys.argv[1], int(sys.argv[2])
import_folder("faults", folder)
campaign = Campaign.objects.create(
    name="faults", seed=7, rater_links=links, vote_floor_ms=0, break_every=0
)
campaign.datasets.set(Dataset.objects.filter(name="faults"))
campaign.methods.set(Method.objects.filter(slug__in=["nearest", "bicubic", "hr"]))
start_generation(campaign)
campaign.refresh_from_db()
campaign.launch()
tokens = list(campaign.raters.links().order_by("pk").values_list("token", flat=True))
# Every session but the browser's has consented already: they go on with the display check.
campaign.raters.filter(token__in=tokens[1:]).update(consented_at=timezone.now())
print("TOKENS " + ",".join(tokens))
"""


def prepare_live_campaign(env, folder, links, root):
    """A live campaign (nearest, bicubic, hr on the images in `folder`) with `links` rater
    links in the database `env` names; returns the links' tokens."""
    import sys

    env = {**env, "CELERY_TASK_ALWAYS_EAGER": "1", "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", PREPARE, str(folder), str(links)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode:
        raise RuntimeError(f"preparing the campaign failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("TOKENS "))
    return line.split(" ", 1)[1].split(",")
