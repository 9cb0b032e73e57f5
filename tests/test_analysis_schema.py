"""Vote validation and the command line: clear messages, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from study.analysis import VotesError, validate_votes
from study.analysis.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def votes(**cols):
    base = {
        "rater": ["a", "b"],
        "dataset": ["Set5"] * 2,
        "image": ["baby"] * 2,
        "method": ["bicubic"] * 2,
        "score": [2, 3],
    }
    base.update(cols)
    return pd.DataFrame(base)


def test_it_fills_defaults_and_types():
    v = validate_votes(votes())
    assert list(v.columns[:7]) == ["rater", "dataset", "image", "method", "score", "kind", "repeat"]
    assert v["kind"].tolist() == ["rating", "rating"]
    assert v["repeat"].tolist() == [0, 0]
    assert v["score"].dtype == "float64"


def test_it_names_missing_columns():
    with pytest.raises(VotesError, match="lack required column.*method"):
        validate_votes(votes().drop(columns="method"))


def test_it_names_rows_with_non_numeric_scores():
    with pytest.raises(VotesError, match=r"not numeric in row 1 \(values 'x'\)"):
        validate_votes(votes(score=[3, "x"]))


def test_it_names_rows_with_scores_outside_the_scale():
    with pytest.raises(VotesError, match=r"outside 1-5 in rows 0, 1 \(values 0, 6\)"):
        validate_votes(votes(score=[0, 6]))


def test_it_rejects_missing_scores_and_identifiers():
    with pytest.raises(VotesError, match="score is missing in row 0"):
        validate_votes(votes(score=[None, 3]))
    with pytest.raises(VotesError, match="'rater' is empty"):
        validate_votes(votes(rater=[None, "b"]))


def test_it_rejects_bad_repeat_and_empty_tables():
    with pytest.raises(VotesError, match="repeat is not a non-negative integer"):
        validate_votes(votes(repeat=[0, 1.5]))
    with pytest.raises(VotesError, match="no rows"):
        validate_votes(votes().iloc[:0])
    assert issubclass(VotesError, ValueError)


def test_it_lower_cases_kinds():
    v = validate_votes(votes(kind=[" Gold", None]))
    assert v["kind"].tolist() == ["gold", "rating"]


@pytest.mark.parametrize(
    "csv, message",
    [
        ("rater,dataset,image,score\na,S,i,3\n", "lack required column(s) method"),
        ("rater,dataset,image,method,score\na,S,i,m,7\n", "outside 1-5 in row 2 "),
        # Rows as a spreadsheet numbers them: the header is row 1.
        ("rater,dataset,image,method,score\na,S,i,m,3\nb,S,i,m,4\nc,S,i,m,x\n", "in row 4 "),
        ("rater,dataset,image,method,score\na,S,i,m,good\n", "not numeric"),
        ("", "not a readable CSV"),
    ],
)
def test_it_exits_nonzero_with_one_line(tmp_path, capsys, csv, message):
    f = tmp_path / "votes.csv"
    f.write_text(csv)
    assert main(["--votes", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_it_reports_a_missing_file(tmp_path, capsys):
    assert main(["--votes", str(tmp_path / "nope.csv"), "--out", str(tmp_path)]) == 2
    assert "votes file not found" in capsys.readouterr().err


def test_it_runs_as_a_module_without_django(tmp_path):
    f = tmp_path / "votes.csv"
    votes().to_csv(f, index=False)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-m", "study.analysis", "--votes", str(f), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    res = subprocess.run(
        [sys.executable, "-c", "import sys, study.analysis; print('django' in sys.modules)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert res.stdout.strip() == "False", res.stderr
    assert (tmp_path / "out" / "mos.csv").exists()


def test_timestamps_with_and_without_a_fraction_of_a_second_are_read_row_by_row():
    """A vote at a whole second is written without a fraction (``datetime.isoformat``): a first
    row like that must not set the format for the rest (pandas infers one from the first)."""
    stamps = ["2026-01-02T03:04:05+00:00", "2026-01-02T03:04:05.123456+00:00"]
    v = validate_votes(votes(timestamp=stamps))
    assert v["timestamp"].tolist() == [
        pd.Timestamp("2026-01-02 03:04:05", tz="UTC"),
        pd.Timestamp("2026-01-02 03:04:05.123456", tz="UTC"),
    ]
    # Other text pandas reads, cell by cell; what none can read is named.
    v = validate_votes(votes(timestamp=["2026-01-02 03:04:05", "01/02/2026 10:00"]))
    assert v["timestamp"].dt.hour.tolist() == [3, 10]
    with pytest.raises(VotesError, match="timestamp cannot be parsed in row 1"):
        validate_votes(votes(timestamp=["2026-01-02T03:04:05+00:00", "yesterday-ish"]))
