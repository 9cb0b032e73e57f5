"""The rater's page rides out a database outage (issue 23, findings 1 and 6).

Unit level: a rater request that loses the database answers 503 with Retry-After (JSON for the
page's script, a page that reloads itself otherwise), never a 500 or a traceback, whatever
DEBUG says; a resent vote the server stored already is acknowledged as that vote.

Fault level: a private PostgreSQL cluster (tests/faults_pg.py) is restarted and stopped for
20 s under a real Chromium rater and a few HTTP raters, against gunicorn with DEBUG off.
"""

import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.db import connections
from django.test import Client

from study.models import Trial
from tests import faults_pg
from tests.conftest import (
    ROOT,
    get_ready,
    png_bytes,
    require,
    sample_image,
    wait_for_image,
    wait_until_ready,
)
from tests.faults_pg import closed_port

PG_PORT, WEB_PORT = 18120, 18121
OUTAGE_S = 20
VOTE_ID = "7f1c2a9e-0b6d-4c55-9a1e-3d2f8b7c6a10"


@pytest.fixture
def database_down(django_db_blocker):
    """The default connection pointed at a database that does not answer (a closed port, or
    for SQLite a file that cannot be opened): every query raises a real OperationalError."""
    saved = connections["default"]
    broken = connections.create_connection("default")
    # A copy: the handler's own settings (the test database's) stay as they are.
    broken.settings_dict = copy.deepcopy(broken.settings_dict)
    if broken.vendor == "sqlite":
        broken.settings_dict["NAME"] = "/nonexistent-srmos-dir/db.sqlite3"
    else:
        broken.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    connections["default"] = broken
    try:
        with django_db_blocker.unblock():
            yield
    finally:
        broken.close()
        connections["default"] = saved


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def test_a_rater_page_answers_503_and_reloads_itself_while_the_database_is_down(
    database_down, debug
):
    client = Client(raise_request_exception=False)
    response = client.get("/r/some-token/")
    body = response.content.decode()
    assert response.status_code == 503, body[:500]
    assert response["Retry-After"].isdigit()
    assert "Reconnecting" in body and "retries by itself" in body
    assert 'http-equiv="refresh"' in body and "url=/r/some-token/" in body
    assert "Traceback" not in body and "Server Error" not in body


def test_a_form_post_during_the_outage_reloads_onto_the_session_page(database_down, debug):
    client = Client(raise_request_exception=False)
    response = client.post("/r/some-token/consent/", {"consent": "yes"})
    assert response.status_code == 503
    assert "url=/r/some-token/" in response.content.decode()


def test_a_vote_answers_503_json_with_retry_while_the_database_is_down(database_down, debug):
    client = Client(raise_request_exception=False)
    response = client.post(
        "/r/some-token/vote/",
        {"position": 0, "score": 3, "vote_id": VOTE_ID},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert response.json()["retry"] is True and "unavailable" in response.json()["error"]


def test_an_image_request_during_the_outage_answers_503(database_down, debug):
    response = Client(raise_request_exception=False).get("/r/some-token/t/0.png")
    assert response.status_code == 503 and response["Retry-After"].isdigit()


@pytest.mark.django_db
def test_a_resent_vote_already_stored_is_acknowledged_as_that_vote(live_campaign, client):
    """The first try was stored but its answer was lost: the page sends the same vote (same
    id) again and hears "stored", not "already rated in another window"."""
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    url = f"/r/{rater.token}/vote/"
    vote = {"position": 0, "score": 4, "duration_ms": 900, "vote_id": VOTE_ID}
    first = client.post(url, vote, HTTP_ACCEPT="application/json")
    assert first.json()["status"] == "stored"
    again = client.post(url, vote, HTTP_ACCEPT="application/json")
    assert again.status_code == 200 and again.json()["status"] == "stored"
    assert again.json()["next"]["position"] == 1
    # Another window's vote on the same image (its own id) is the duplicate it always was.
    other = client.post(
        url, {**vote, "score": 2, "vote_id": "0" * 32}, HTTP_ACCEPT="application/json"
    )
    assert other.json()["status"] == "duplicate"
    no_id = client.post(url, {"position": 0, "score": 4}, HTTP_ACCEPT="application/json")
    assert no_id.json()["status"] == "duplicate"
    stored = list(Trial.objects.filter(rater=rater).answered().values_list("position", "score"))
    assert stored == [(0, 4)]


@pytest.mark.django_db
def test_a_resend_of_the_last_vote_finds_the_session_done_and_is_that_vote(live_campaign, client):
    rater = live_campaign.raters.first()
    get_ready(client, rater)
    url = f"/r/{rater.token}/vote/"
    last = rater.n_trials - 1
    for position in range(rater.n_trials):
        vote = {"position": position, "score": 3, "vote_id": f"vote-{position:04d}-abcdef"}
        answer = client.post(url, vote, HTTP_ACCEPT="application/json").json()
        assert answer["status"] == "stored"
    resent = client.post(url, vote, HTTP_ACCEPT="application/json").json()
    assert resent["status"] == "stored" and resent["next"] is None and last == position
    rater.refresh_from_db()
    assert rater.completed_at is not None
    assert Trial.objects.filter(rater=rater).answered().count() == rater.n_trials


def wait_for_http(url, timeout=90, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            return requests.get(url, timeout=2)
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@pytest.mark.slow
def test_serve_runs_the_web_without_debug_unless_asked(tmp_path):
    """`serve` is what an operator runs on a public port: no traceback pages by default."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEBUG", "SECRET_KEY")}
    env.update(SRMOS_DATA_DIR=str(tmp_path / "data"), STATIC_ROOT=str(tmp_path / "static"))
    port = WEB_PORT + 1
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        missing = wait_for_http(f"http://127.0.0.1:{port}/no-such-page/", proc=server)
        script = requests.get(f"http://127.0.0.1:{port}/static/study/session.js", timeout=10)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert missing.status_code == 404
    # Django's debug 404 page names the URLconf and says DEBUG is on; production's does not.
    assert "DEBUG = True" not in missing.text and "URLconf" not in missing.text
    assert script.status_code == 200  # static files are served without DEBUG too
    assert "DEBUG is on" not in output


# --- Fault level: a private PostgreSQL cluster restarted and stopped under real raters. ---


@pytest.fixture
def cluster(tmp_path):
    reason = faults_pg.missing()
    require(not reason, reason)
    # A folder the postgres user can reach (pytest's tmp_path may sit under /root).
    folder = Path(tempfile.mkdtemp(prefix="srmos-faults-pg-"))
    os.chmod(folder, 0o755)
    instance = faults_pg.Cluster(folder / "cluster", PG_PORT).init()
    instance.start()
    instance.create_database("srmos_faults")
    yield instance
    instance.destroy()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def served(cluster, tmp_path):
    """A live campaign in the private cluster, served by `manage.py serve` as an operator
    runs it (no DEBUG set: production defaults), with no worker (voting needs none)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        (folder / f"img{i}.png").write_bytes(png_bytes(sample_image(i, (48, 64))))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DATABASE_URL=cluster.url("srmos_faults"),
        SRMOS_DATA_DIR=str(tmp_path / "data"),
        MEDIA_ROOT=str(tmp_path / "media"),
        STATIC_ROOT=str(tmp_path / "static"),
        LOG_LEVEL="WARNING",
    )
    tokens = faults_pg.prepare_live_campaign(env, folder, links=5, root=ROOT)
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", "--bind", f"127.0.0.1:{WEB_PORT}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{WEB_PORT}"
    try:
        wait_for_http(f"{base}/healthz", proc=server)
        yield base, tokens
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


class HttpRater(threading.Thread):
    """A rater without a browser: votes about once a second through both outages, sending a
    vote again (same id) on 503 or a lost connection, as the page does."""

    def __init__(self, base, token, stop):
        super().__init__(daemon=True)
        self.base, self.token, self.stop = base, token, stop
        self.acknowledged = {}  # position -> vote id the server said it stored
        self.unexpected = []  # any answer but 200 and 503
        self.outage_answers = 0

    def call(self, method, path, **kwargs):
        """One request, tried again on 503 or a lost connection until it gets through."""
        attempt = 0
        while True:
            try:
                response = self.session.request(method, self.base + path, timeout=30, **kwargs)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code != 503:
                if response.status_code >= 500:
                    self.unexpected.append((path, response.status_code, response.text[:200]))
                return response
            if response is not None:
                assert response.headers["Retry-After"].isdigit()
            self.outage_answers += 1
            time.sleep(min(2.0, 0.25 * 2**attempt))
            attempt += 1

    def run(self):
        self.session = requests.Session()
        page = self.call("GET", f"/r/{self.token}/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        headers = {"X-CSRFToken": csrf}
        self.call(
            "POST",
            f"/r/{self.token}/display/",
            data={"viewport_width": 1920, "viewport_height": 1080, "dpr": 1},
            headers=headers,
        )
        page = self.call("GET", f"/r/{self.token}/")
        position = int(re.search(r'name="position" value="(\d+)"', page.text).group(1))
        headers["Accept"] = "application/json"
        while not self.stop.is_set():
            vote_id = uuid.uuid4().hex
            data = {"position": position, "score": 1 + position % 5, "vote_id": vote_id}
            response = self.call("POST", f"/r/{self.token}/vote/", data=data, headers=headers)
            if response.status_code != 200:
                self.unexpected.append(("vote", response.status_code, response.text[:200]))
                return
            body = response.json()
            if body["status"] == "stored":
                self.acknowledged[position] = vote_id
            if body["next"] is None:
                return
            position = body["next"]["position"]
            time.sleep(1.0)


def stored_votes(cluster):
    """{token: {position: (score, vote_id)}} of every answered trial, read straight from the
    cluster."""
    import psycopg

    with psycopg.connect(cluster.url("srmos_faults")) as conn:
        rows = conn.execute(
            "SELECT r.token, t.position, t.score, t.vote_id FROM study_trial t "
            "JOIN study_rater r ON r.id = t.rater_id WHERE t.score IS NOT NULL"
        ).fetchall()
    votes = {}
    for token, position, score, vote_id in rows:
        votes.setdefault(token, {})[position] = (score, vote_id)
    return votes


def rate_when_ready(page, number, key):
    wait_for_image(page, number)
    page.wait_for_function("n => document.body.dataset.painted === String(n - 1)", arg=number)
    wait_until_ready(page)
    page.keyboard.press(key)


@pytest.mark.slow
@pytest.mark.browser
def test_raters_ride_out_a_database_restart_and_a_20_s_stop(cluster, served, page):
    base, tokens = served
    server_errors = []
    page.on(
        "response",
        lambda r: r.status >= 500 and r.status != 503 and server_errors.append((r.status, r.url)),
    )
    stop = threading.Event()
    raters = [HttpRater(base, token, stop) for token in tokens[1:]]
    for rater in raters:
        rater.start()

    browser_token = tokens[0]
    page.goto(f"{base}/r/{browser_token}/")
    page.wait_for_selector("text=Welcome")
    page.focus("input[name=consent]")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#stimulus")
    total = int(re.search(r"of (\d+)", page.inner_text("#counter")).group(1))
    rate_when_ready(page, 1, "3")
    rate_when_ready(page, 2, "3")

    # (a) A fast restart while the rater keeps scoring: a vote or an image may meet it.
    restart = threading.Thread(target=cluster.restart)
    restart.start()
    number = 3
    while restart.is_alive() or number < 6:
        rate_when_ready(page, number, "3")
        number += 1
    restart.join()

    # (b) Stopped for 20 s: the score typed during the outage is kept and sent afterwards.
    wait_for_image(page, number)
    wait_until_ready(page)
    cluster.stop()
    stopped_at = time.monotonic()
    page.keyboard.press("4")
    page.wait_for_function("() => document.body.dataset.connection === 'reconnecting'")
    assert page.is_visible("#reconnecting")
    assert "Reconnecting" in page.inner_text("#reconnecting")
    for key in ("5", "2", "5"):  # keys pressed while reconnecting cast no extra vote
        page.wait_for_timeout(1000)
        page.keyboard.press(key)
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
    cluster.start()
    # No reload by hand: the page sends the kept score and shows the next image by itself.
    wait_for_image(page, number + 1)
    page.wait_for_function("() => document.body.dataset.connection === 'ok'")
    typed_during_outage = number - 1
    assert stored_votes(cluster)[browser_token][typed_during_outage][0] == 4
    assert number not in stored_votes(cluster)[browser_token]

    for n in range(number + 1, total + 1):
        rate_when_ready(page, n, "2")
    page.wait_for_url(re.compile(r"/done/$"))
    stop.set()
    for rater in raters:
        rater.join(60)

    assert not server_errors, server_errors
    votes = stored_votes(cluster)
    # The browser's session: every image once, the outage's score among them.
    assert sorted(votes[browser_token]) == list(range(total))
    for rater in raters:
        assert not rater.unexpected, rater.unexpected
        assert rater.outage_answers > 0  # it did meet the outage
        mine = votes.get(rater.token, {})
        # Every vote the server acknowledged is in the database, once, as that vote; nothing
        # else was stored for the session.
        assert {p: v for p, (_, v) in mine.items()} == rater.acknowledged
