"""The live report page: in-place updates through the fragment endpoint, tables for reading
(key columns first, rounded) while the CSV files keep full precision, the paper's method order,
failed fits in words, and one votes format for both downloads."""

import functools
import io
import json
import re
import zipfile
from html.parser import HTMLParser

import pandas as pd
import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from study.analysis import report as analysis_report
from study.analysis.subject_model import p910_mle
from study.generation.viewer import method_order
from study.models import Campaign, Method
from study.models.catalog import paper_order
from study.reports.page import number, p_value

pytestmark = pytest.mark.django_db


class _Tables(HTMLParser):
    """The report tables of a page: {data-file: [header cells, *row cells]} as shown."""

    def __init__(self, html):
        super().__init__()
        self.tables, self._rows, self._cell = {}, None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "data-file" in attrs:
            self._rows = self.tables[attrs["data-file"]] = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            self._rows = None


def tables_of(html):
    return {
        name: pd.DataFrame(rows[1:], columns=rows[0]) for name, rows in _Tables(html).tables.items()
    }


def report_url(campaign, suffix=""):
    return f"/admin/study/campaign/{campaign.pk}/report/{suffix}"


def zip_csv(client, campaign, name):
    response = client.get(f"/admin/study/campaign/{campaign.pk}/export/report/")
    return zipfile.ZipFile(io.BytesIO(response.content)).read(name)


def simulate(campaign, raters=5, seed=2, bad=2):
    call_command(
        "simulate_raters",
        campaign.name,
        *("--raters", str(raters), "--bad", str(bad), "--seed", str(seed)),
    )


def test_an_outsider_is_sent_to_the_login_page(live_campaign, client):
    simulate(live_campaign)
    for suffix in ("", "fragment/", "figures/"):
        url = report_url(live_campaign, suffix)
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_view_permission_is_refused(live_campaign, client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
    client.force_login(clerk)
    assert client.get(report_url(live_campaign, "fragment/")).status_code == 404
    clerk.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    assert client.get(report_url(live_campaign, "fragment/")).status_code == 200


def test_the_fragment_returns_the_version_and_the_body(live_campaign, client, researcher):
    simulate(live_campaign, raters=4)
    client.force_login(researcher)
    reply = client.get(report_url(live_campaign, "fragment/")).json()
    assert reply["live"] is True and reply["changed"] is True
    assert reply["version"].startswith("36-")  # 4 raters x 9 trials
    assert "36 rating votes from 4 raters" in reply["html"]
    assert "<html" not in reply["html"] and "breadcrumbs" not in reply["html"]
    assert set(tables_of(reply["html"])) >= {"mos.csv", "raters.csv", "significance.csv"}
    # The same version again: nothing to swap, so no body is computed or sent.
    same = client.get(report_url(live_campaign, "fragment/"), {"version": reply["version"]})
    assert same.json() == {
        "version": reply["version"],
        "live": True,
        "changed": False,
        "fresh": True,
        "computing": False,
        "freshness": "As of 36 votes, computed 0 s ago.",
    }
    simulate(live_campaign, raters=1, seed=5, bad=0)
    newer = client.get(report_url(live_campaign, "fragment/"), {"version": reply["version"]})
    assert newer.json()["version"].startswith("45-")
    assert "45 rating votes from 5 raters" in newer.json()["html"]


def test_the_figures_come_apart_from_the_tables(live_campaign, client, researcher):
    simulate(live_campaign)
    client.force_login(researcher)
    fragment = client.get(report_url(live_campaign, "fragment/")).json()
    assert "data:image/" not in fragment["html"]  # the tables do not wait for matplotlib
    figures = client.get(report_url(live_campaign, "figures/")).json()
    assert figures["version"] == fragment["version"]
    assert figures["html"].count("data:image/svg+xml;base64,") == 4
    assert 'width="' in figures["html"] and "<table" not in figures["html"]
    # The page itself shows both at once.
    html = client.get(report_url(live_campaign)).content.decode()
    assert html.count("data:image/svg+xml;base64,") == 4


def test_the_page_updates_in_place_instead_of_reloading(live_campaign, client, researcher):
    simulate(live_campaign)
    client.force_login(researcher)
    html = client.get(report_url(live_campaign)).content.decode()
    assert 'http-equiv="refresh"' not in html
    version = client.get(report_url(live_campaign, "fragment/")).json()["version"]
    assert f'data-version="{version}"' in html and 'data-live="yes"' in html
    assert "study/report.js" in html and "/report/fragment/" in html
    live_campaign.close()
    reply = client.get(report_url(live_campaign, "fragment/"), {"version": version}).json()
    assert reply["live"] is False  # the page stops polling
    assert 'data-live="no"' in client.get(report_url(live_campaign)).content.decode()


def test_an_empty_campaign_says_so_in_the_fragment(live_campaign, client, researcher):
    client.force_login(researcher)
    reply = client.get(report_url(live_campaign, "fragment/")).json()
    assert reply["version"] == "0-0.000000-0.000000"
    assert "has no votes yet" in reply["html"]


def test_methods_come_in_the_papers_order_everywhere(live_campaign, client, researcher):
    simulate(live_campaign)
    client.force_login(researcher)
    paper = ["nearest", "bicubic", "hr"]  # alphabetical would be bicubic, hr, nearest
    mos = pd.read_csv(io.BytesIO(zip_csv(client, live_campaign, "mos.csv")))
    assert mos["method"].tolist() == paper
    export = client.get(f"/admin/study/campaign/{live_campaign.pk}/export/mos/")
    assert pd.read_csv(io.BytesIO(export.content))["method"].tolist() == paper
    table2 = pd.read_csv(io.BytesIO(zip_csv(client, live_campaign, "table2.csv")))
    assert table2.columns.tolist()[2:] == paper
    significance = pd.read_csv(io.BytesIO(zip_csv(client, live_campaign, "significance.csv")))
    assert significance[["method_a", "method_b"]].values.tolist() == [
        ["nearest", "bicubic"],
        ["nearest", "hr"],
        ["bicubic", "hr"],
    ]
    tables = tables_of(client.get(report_url(live_campaign)).content.decode())
    assert tables["mos.csv"]["method"].tolist() == paper
    assert tables["table2.csv"].columns.tolist()[2:] == paper


def test_the_paper_order_puts_interpolation_networks_imports_and_hr_in_turn():
    def method(slug, kind):
        return Method(slug=slug, kind=kind)

    methods = [
        method("hr", Method.REFERENCE),
        method("authors-srgan", Method.IMPORTED),
        method("srgan-mse", Method.NETWORK),
        method("lanczos", Method.INTERPOLATION),
        method("espcn", Method.NETWORK),
        method("bicubic", Method.INTERPOLATION),
        method("nearest", Method.INTERPOLATION),
    ]
    expected = ["nearest", "bicubic", "lanczos", "espcn", "srgan-mse", "authors-srgan", "hr"]
    assert [m.slug for m in paper_order(methods)] == expected
    # The comparison viewer lays its panels out by the same rule.
    assert [m.slug for m in sorted(methods, key=method_order)] == expected


def test_the_page_rounds_while_the_csv_keeps_full_precision(live_campaign, client, researcher):
    simulate(live_campaign, raters=7, seed=3)
    client.force_login(researcher)
    mos = pd.read_csv(io.BytesIO(zip_csv(client, live_campaign, "mos.csv")))
    html = client.get(report_url(live_campaign)).content.decode()
    shown = tables_of(html)["mos.csv"]
    assert shown["mos"].tolist() == [f"{x:.2f}" for x in mos["mos"]]
    assert shown["ci95_low"].tolist() == [f"{x:.2f}" for x in mos["ci95_low"]]
    assert any(len(repr(x)) > 8 for x in mos["mos"])  # the CSV has every digit
    for x in mos["mos"]:
        assert repr(x) not in html or len(repr(x)) <= 4
    p_cells = tables_of(html)["significance.csv"][["p", "p_holm", "p_bh"]].to_numpy().ravel()
    assert all(re.fullmatch(r"<0\.001|[01]\.\d{3}|–", cell) for cell in p_cells)


def test_key_columns_come_first(live_campaign, client, researcher):
    simulate(live_campaign)
    client.force_login(researcher)
    tables = tables_of(client.get(report_url(live_campaign)).content.decode())
    # The interval over raters and images first, the ITU one over votes beside it.
    assert tables["mos.csv"].columns.tolist()[:7] == [
        "dataset",
        "method",
        "mos",
        "ci95_low_general",
        "ci95_high_general",
        "ci95_low",
        "ci95_high",
    ]
    assert tables["raters.csv"].columns.tolist()[:3] == ["rater", "flags", "flagged"]
    assert tables["significance.csv"].columns.tolist()[:3] == ["dataset", "method_a", "method_b"]
    # The CSV file keeps the analysis' own column order.
    raters = pd.read_csv(io.BytesIO(zip_csv(client, live_campaign, "raters.csv")))
    assert raters.columns[1] == "n_votes"


def test_display_numbers_read_as_papers_print_them():
    assert [p_value(p) for p in (0.0004, 0.00312, 0.5, float("nan"))] == [
        "<0.001",
        "0.003",
        "0.500",
        "–",
    ]
    assert [number(x) for x in (0.123456, 123.456, float("inf"), float("nan"))] == [
        "0.123",
        "123.5",
        "inf",
        "–",
    ]
    assert number(3.14159, 2) == "3.14"


def test_the_votes_export_is_the_zips_votes_csv(live_campaign, client, researcher):
    simulate(live_campaign, raters=3)
    client.force_login(researcher)
    export = client.get(f"/admin/study/campaign/{live_campaign.pk}/export/votes/").content
    assert export == zip_csv(client, live_campaign, "votes.csv")
    votes = pd.read_csv(io.BytesIO(export))
    assert votes.columns.tolist()[:8] == [
        "rater",
        "dataset",
        "image",
        "method",
        "score",
        "kind",
        "repeat",
        "timestamp",
    ]


def test_the_votes_export_of_an_empty_campaign_is_a_header(live_campaign, client, researcher):
    client.force_login(researcher)
    export = client.get(f"/admin/study/campaign/{live_campaign.pk}/export/votes/")
    assert export.content.decode().startswith("rater,dataset,image,method,score,kind,repeat")
    assert export.content.decode().count("\n") == 1


def test_a_failed_fit_reads_as_a_sentence(live_campaign, client, researcher, monkeypatch):
    def no_fit(*args, **kwargs):
        raise ValueError("Residuals are not finite in the initial point.")

    monkeypatch.setattr("scipy.optimize.leastsq", no_fit)
    # The subject model stopped after one iteration: unconverged, said in words too.
    monkeypatch.setattr(analysis_report, "p910_mle", functools.partial(p910_mle, max_iter=1))
    # PSNR/SSIM only: the page then shows correlation.csv, where a failed fit leaves a gap (the
    # metric panel maps such a metric by a straight line instead, and says so).
    Campaign.objects.filter(pk=live_campaign.pk).update(metrics=[])
    simulate(live_campaign, raters=6)
    client.force_login(researcher)
    html = client.get(report_url(live_campaign)).content.decode()
    assert "The VQEG logistic could not be fitted for" in html
    assert "PLCC and RMSE are left empty" in html
    assert "Residuals are not finite" not in html
    assert "The P.910 subject model did not converge within 1 iterations" in html
    correlation = pd.read_csv(io.BytesIO(zip_csv(client, live_campaign, "correlation.csv")))
    failed = correlation[correlation["note"].fillna("").str.startswith("logistic fit failed")]
    assert len(failed) and failed["note"].str.contains("Residuals are not finite").all()
    manifest = json.loads(zip_csv(client, live_campaign, "manifest.json"))
    assert any("did not converge" in note for note in manifest["notes"])


def test_a_closed_campaign_has_no_live_updates(live_campaign, client, researcher):
    simulate(live_campaign)
    live_campaign.close()
    assert Campaign.objects.get(pk=live_campaign.pk).status != Campaign.LIVE
    client.force_login(researcher)
    html = client.get(report_url(live_campaign)).content.decode()
    assert 'data-live="no"' in html and "Updates in place" not in html


def test_the_analysis_takes_the_order_as_a_list_and_stays_alphabetical_without():
    from study.analysis import mos_table, pairwise_tests
    from tests.conftest import synthetic_votes

    votes = synthetic_votes(4, n_images=2)
    votes = votes[votes["method"].isin(["nn", "bicubic", "srgan-vgg54", "hr"])]
    set5 = lambda t: t[t["dataset"] == "Set5"]  # noqa: E731
    assert set5(mos_table(votes))["method"].tolist() == ["bicubic", "hr", "nn", "srgan-vgg54"]
    order = ["nn", "bicubic", "hr"]  # srgan-vgg54 unlisted: after the listed ones
    table = mos_table(votes, method_order=order)
    assert table.index.tolist() == list(range(len(table)))
    assert set5(table)["method"].tolist() == ["nn", "bicubic", "hr", "srgan-vgg54"]
    pairs = set5(pairwise_tests(votes, method_order=order))
    assert pairs[["method_a", "method_b"]].values.tolist()[:3] == [
        ["nn", "bicubic"],
        ["nn", "hr"],
        ["nn", "srgan-vgg54"],
    ]
    # Holm's adjustment does not depend on the order the pairs are listed in.
    plain = set5(pairwise_tests(votes)).set_index(["method_a", "method_b"])["p_holm"]
    nn_bicubic = pairs.set_index(["method_a", "method_b"]).loc[("nn", "bicubic"), "p_holm"]
    assert nn_bicubic == pytest.approx(plain.loc[("bicubic", "nn")])
