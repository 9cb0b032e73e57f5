"""The long vote format every analysis takes, and its validation.

One row per vote: ``rater, dataset, image, method, score`` plus optional ``kind`` (``rating``,
``calibration``, ``gold``, ``retest``, ...; default ``rating``), ``repeat`` (int, default 0),
``timestamp``, ``expected`` (a gold item's threshold ``">=4"``/``"<=2"`` or an expected score;
empty for other trials) and ``position`` (the trial's 0-based place in the rater's session).
A stimulus is one ``(dataset, image, method)``. Scores are absolute category ratings on the
ITU-T P.910 five-point scale, 1 (bad) to 5 (excellent).
"""

from __future__ import annotations

import numbers
import re

import numpy as np
import pandas as pd

REQUIRED = ("rater", "dataset", "image", "method", "score")
OPTIONAL = ("kind", "repeat", "timestamp", "expected", "position")
STIMULUS = ("dataset", "image", "method")
SCALE = (1.0, 5.0)
_SHOW = 5  # offending rows named in a message
# A gold item's expectation: a threshold (">=4" for the HR image, "<=2" for nearest neighbour).
THRESHOLD = r"^\s*(>=|<=)\s*(\d+(?:\.\d+)?)\s*$"


class VotesError(ValueError):
    """The votes cannot be analysed; the message says which rows or columns are wrong."""


def _rows(index: pd.Index) -> str:
    shown = ", ".join(str(i) for i in index[:_SHOW])
    more = f" and {len(index) - _SHOW} more" if len(index) > _SHOW else ""
    return f"{'row' if len(index) == 1 else 'rows'} {shown}{more}"


def _as_category(col: pd.Series) -> pd.Series:
    """Identifiers as a categorical of strings with sorted categories.

    Grouping a million votes by categorical codes is an order of magnitude faster than by
    strings, and a column that is already such a categorical passes through unchanged, so
    re-validating validated votes costs little (unused categories may remain; every grouping
    here uses ``observed=True``).
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        if all(isinstance(c, str) for c in cats) and cats.is_monotonic_increasing:
            return col
    col = col.astype(str)
    return col.astype(pd.CategoricalDtype(sorted(col.unique())))


def _kinds(col: pd.Series | None, n: int) -> pd.Series:
    """``kind`` as a categorical: stripped, lower-cased, empty or missing -> ``"rating"``."""
    if col is None:
        return pd.Series(pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), ["rating"]))
    cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
    names = [str(c).strip().lower() or "rating" for c in cat.cat.categories]
    uniq = sorted(set(names) | {"rating"})
    lookup = np.array([uniq.index(x) for x in names] + [uniq.index("rating")], dtype=np.int64)
    codes = cat.cat.codes.to_numpy()  # -1 (missing) picks the appended "rating"
    return pd.Series(pd.Categorical.from_codes(lookup[codes], uniq), index=col.index)


def _counts(col: pd.Series, name: str) -> pd.Series:
    """A column of non-negative integers as int64; a missing value is an error too."""
    num = pd.to_numeric(col, errors="coerce")
    bad = col.index[num.isna() | (num != num.round()) | (num < 0)]
    if len(bad):
        raise VotesError(f"{name} is not a non-negative integer in {_rows(bad)}")
    return num.astype("int64")


def _expected(col: pd.Series) -> pd.Series:
    """``expected`` as stripped strings: thresholds and numbers kept, empty or NaN -> ``""``.

    Converted per distinct value (a column holds a handful), as :func:`_kinds` does.
    """
    cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
    names = [
        f"{c:g}" if isinstance(c, numbers.Real) else str(c).strip() for c in cat.cat.categories
    ]
    lookup = np.array([*names, ""], dtype=object)  # code -1 (missing) picks the appended ""
    text = pd.Series(lookup[cat.cat.codes.to_numpy()], index=col.index, dtype=object)
    wrong = {n for n in names if n and not re.match(THRESHOLD, n) and not _is_number(n)}
    bad = text.index[text.isin(wrong)]
    if len(bad):
        values = ", ".join(repr(x) for x in text.loc[bad[:_SHOW]])
        raise VotesError(
            f"expected is neither a threshold (>=N, <=N) nor a number in {_rows(bad)} "
            f"(values {values})"
        )
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_table(df, noun: str, required, optional) -> None:
    """Refuse what is not a DataFrame, lacks a required column or has no rows (``noun`` names
    the table in the message: "votes", "comparisons")."""
    if not isinstance(df, pd.DataFrame):
        raise VotesError(f"{noun} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise VotesError(
            f"{noun} lack required column(s) {', '.join(missing)}; "
            f"expected {', '.join(required)} (optional: {', '.join(optional)})"
        )
    if len(df) == 0:
        raise VotesError(f"{noun} table has no rows")


def _timestamps(column: pd.Series) -> pd.Series:
    """UTC times from ISO 8601 text, with or without a fraction of a second row by row (a vote
    at a whole second has none: ``datetime.isoformat``), and from other text pandas can read,
    each cell on its own (no format inferred from the first row imposed on the rest)."""
    ts = pd.to_datetime(column, errors="coerce", utc=True, format="ISO8601")
    other = ts.isna() & column.notna()
    if other.any():
        ts[other] = pd.to_datetime(column[other], errors="coerce", utc=True, format="mixed")
    return ts


def validate_votes(df: pd.DataFrame) -> pd.DataFrame:
    """Check a long vote table and return a clean copy.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per vote with columns ``rater, dataset, image, method, score`` and optionally
        ``kind``, ``repeat``, ``timestamp``, ``expected``, ``position``. Other columns are kept
        unchanged.

    Returns
    -------
    pandas.DataFrame
        A copy with ``rater, dataset, image, method`` as categoricals of strings (sorted
        categories), ``kind`` as a categorical too (stripped, lower-cased, default
        ``"rating"``),
        ``score`` as float64, ``repeat`` as int64 (default 0),
        ``timestamp`` parsed to UTC datetimes, ``expected`` as stripped strings (``""`` where
        empty or NaN, numbers as ``"5"``), ``position`` as int64, each when present; the index
        is reset.

    Raises
    ------
    VotesError
        No rows; a required column missing; an identifier missing; a score missing, non-numeric
        or outside 1-5; a non-integer ``repeat``; an ``expected`` value that is neither empty, a
        threshold (``>=N``, ``<=N``) nor a number; a missing, negative or non-integer
        ``position``. The message names up to five offending rows by their index label in ``df``
        (for a CSV read with default options, label ``i`` is data line ``i + 1``; the command
        line labels a file's rows as a spreadsheet numbers them, the header being row 1).

    Notes
    -----
    Missing-data policy: a vote without a score is an error, not a silently dropped row. Missing
    votes (a rater who did not rate some stimulus) are simply absent rows; every analysis handles
    incomplete designs.
    """
    check_table(df, "votes", REQUIRED, OPTIONAL)
    if _still_clean(df):
        return df.reset_index(drop=True)
    # Copy-on-write (pandas 3): a shallow copy never lets our column changes reach the caller.
    out = df.copy(deep=False)
    for col in ("rater", "dataset", "image", "method"):
        bad = out.index[out[col].isna()]
        if len(bad):
            raise VotesError(f"column {col!r} is empty in {_rows(bad)}")
        out[col] = _as_category(out[col])

    raw = out["score"]
    score = pd.to_numeric(raw, errors="coerce")
    absent = out.index[raw.isna()]
    if len(absent):
        raise VotesError(f"score is missing in {_rows(absent)}")
    nonnum = out.index[score.isna()]
    if len(nonnum):
        values = ", ".join(repr(v) for v in raw.loc[nonnum[:_SHOW]])
        raise VotesError(f"score is not numeric in {_rows(nonnum)} (values {values})")
    score = score.astype("float64")
    outside = out.index[(score < SCALE[0]) | (score > SCALE[1])]
    if len(outside):
        values = ", ".join(f"{v:g}" for v in score.loc[outside[:_SHOW]])
        raise VotesError(f"score outside 1-5 in {_rows(outside)} (values {values})")
    out["score"] = score

    out["kind"] = _kinds(out["kind"] if "kind" in out.columns else None, len(out)).array

    if "repeat" in out.columns:
        out["repeat"] = _counts(out["repeat"].fillna(0), "repeat")
    else:
        out["repeat"] = 0

    if "timestamp" in out.columns:
        ts = _timestamps(out["timestamp"])
        bad = out.index[ts.isna() & out["timestamp"].notna()]
        if len(bad):
            raise VotesError(f"timestamp cannot be parsed in {_rows(bad)}")
        out["timestamp"] = ts

    if "expected" in out.columns:
        out["expected"] = _expected(out["expected"])
    if "position" in out.columns:
        out["position"] = _counts(out["position"], "position")

    first = [*REQUIRED, "kind", "repeat"] + (["timestamp"] if "timestamp" in out.columns else [])
    rest = [c for c in out.columns if c not in first]
    out = out[first + rest].reset_index(drop=True)
    out.attrs[_CLEAN] = tuple(out.columns)
    return out


# Set on what validate_votes returns (pandas carries attrs through selections), so the dozen
# analyses of one report re-validate the same votes in a millisecond rather than five.
_CLEAN = "srmos_validated_columns"


def _still_clean(df: pd.DataFrame) -> bool:
    """Whether ``df`` came out of :func:`validate_votes` and still holds what it checked.

    The marker alone is not trusted: a caller may have changed a column since, so the dtypes,
    identifiers and the score range are checked again (vectorised, no conversion).
    """
    if df.attrs.get(_CLEAN) != tuple(df.columns):
        return False
    for col in ("rater", "dataset", "image", "method", "kind"):
        dtype = df[col].dtype
        if not isinstance(dtype, pd.CategoricalDtype) or (df[col].cat.codes < 0).any():
            return False
        if col != "kind" and not dtype.categories.is_monotonic_increasing:
            return False
    score = df["score"].to_numpy()
    if df["score"].dtype != np.float64 or not ((score >= SCALE[0]) & (score <= SCALE[1])).all():
        return False
    checked = {"repeat": "int64", "position": "int64", "expected": "object"}
    return all(str(df[c].dtype) == t for c, t in checked.items() if c in df.columns)


def ratings(votes: pd.DataFrame, kinds: tuple[str, ...] = ("rating",)) -> pd.DataFrame:
    """Validated votes of the given kinds only (by default the test ratings)."""
    v = validate_votes(votes)
    sel = v[v["kind"].isin(kinds)]
    if sel.empty:
        raise VotesError(
            f"no votes of kind {', '.join(kinds)} (kinds present: "
            f"{', '.join(sorted(v['kind'].unique()))})"
        )
    return sel.reset_index(drop=True)
