"""Exports read the votes in one snapshot and say how many they reflect, while votes arrive;
a report folder is written whole or not at all."""

import io
import json
import threading
import time
import zipfile

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from study.generation.queue import start_generation
from study.models import Rater
from study.reports import frames

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def campaign(make_campaign, eager_celery):
    """A launched campaign generated in-process, committed (the voting thread must see it)."""
    campaign = make_campaign()
    start_generation(campaign)
    campaign.refresh_from_db()
    campaign.launch()
    return campaign


class Voters(threading.Thread):
    """Casts votes one at a time, each its own transaction, until stopped or out of trials."""

    def __init__(self, campaign, sessions=12):
        super().__init__(daemon=True)
        self.raters = [Rater.objects.create_with_trials(campaign) for _ in range(sessions)]
        self.stop, self.cast, self.error = threading.Event(), 0, None

    def run(self):
        try:
            for rater in self.raters:
                for position in rater.trials.order_by("position").values_list(
                    "position", flat=True
                ):
                    if self.stop.is_set():
                        return
                    self.cast += rater.record_votes({position: 1 + position % 5})
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            connection.close()


def read_zip(body):
    z = zipfile.ZipFile(io.BytesIO(body))
    votes = pd.read_csv(io.BytesIO(z.read("votes.csv")))
    return {
        "votes": votes,
        "mos": pd.read_csv(io.BytesIO(z.read("mos.csv"))),
        "raters": pd.read_csv(io.BytesIO(z.read("raters.csv"))),
        "manifest": json.loads(z.read("manifest.json")),
        "campaign": z.read("campaign.txt").decode(),
    }


def test_two_exports_while_votes_arrive_each_agree_with_their_stated_count(
    campaign, client, researcher
):
    client.force_login(researcher)
    voters = Voters(campaign)
    voters.start()
    try:
        deadline = time.monotonic() + 60
        while voters.cast < 10 and voters.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        zips = [read_zip(frames.report_zip(campaign)) for _ in range(2)]
        csv_exports = [
            client.get(f"/admin/study/campaign/{campaign.pk}/export/{kind}/")
            for kind in ("votes", "mos")
        ]
    finally:
        voters.stop.set()
        voters.join(60)
    assert voters.error is None, voters.error
    assert voters.cast > 0
    for z in zips:
        n = len(z["votes"])
        # The count it states, everywhere, is the votes it holds...
        assert z["manifest"]["as_of"]["n_votes"] == n
        assert z["manifest"]["as_of"]["n_answered_trials"] == n  # read in the same snapshot
        assert f"votes: {n} (this report reflects exactly these" in z["campaign"]
        # ...and every table was computed from exactly those votes.
        ratings = z["votes"][z["votes"]["kind"] == "rating"]
        assert z["mos"]["n"].sum() == len(ratings)
        assert (
            z["mos"].set_index("method")["n"].to_dict()
            == ratings["method"].value_counts().to_dict()
        )
        assert z["raters"]["n_votes"].sum() == n
        assert z["manifest"]["n_rating_votes"] == len(ratings)
    votes, mos = csv_exports
    stated = int(votes["X-Srmos-Votes"])
    assert len(pd.read_csv(io.BytesIO(votes.content))) == stated
    mos_table = pd.read_csv(io.BytesIO(mos.content))
    assert mos_table["n"].sum() <= int(mos["X-Srmos-Votes"])


def test_a_failed_export_leaves_no_half_written_report(campaign, tmp_path, monkeypatch):
    call_command("simulate_raters", campaign.name, "--raters", "4", "--seed", "1")
    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "report"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    # The tables are written by then; the figures fail.
    monkeypatch.setattr("study.analysis.plots.mos_ci", disk_full)
    with pytest.raises(CommandError, match="Nothing was written there"):
        call_command("export_report", campaign.name, str(out))
    assert not out.exists()
    assert list(exports.iterdir()) == []  # no temporary folder left behind either
    # Into a folder that holds other files: they stay, and the report lands whole.
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    monkeypatch.undo()
    call_command("export_report", campaign.name, str(out))
    assert (out / "notes.txt").read_text() == "mine"
    assert {"votes.csv", "mos.csv", "manifest.json", "campaign.txt"} <= {
        p.name for p in out.iterdir()
    }
    assert json.loads((out / "manifest.json").read_text())["as_of"]["n_votes"] == 36
