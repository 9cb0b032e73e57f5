"""Paired-comparison votes: their long format, count matrices, consistency and agreement.

One row per comparison: ``rater, dataset, image, method_a, method_b, choice``, where ``choice``
is the chosen method's name or ``"a"``/``"b"`` (the side: method_a or method_b), plus
optional ``kind`` (``rating`` for a test trial, the default, or ``calibration``, ``gold``, ...),
``timestamp`` and ``position``. Forced choice: no ties. A block is what one comparison matrix
describes: a dataset's images pooled, or one image. Scaling to JOD lives in :mod:`.jod`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd

from .graph import components, strongly_connected
from .order import order_methods, sort_rows
from .schema import VotesError, _counts, _kinds, _rows, check_table

REQUIRED = ("rater", "dataset", "image", "method_a", "method_b", "choice")
OPTIONAL = ("kind", "timestamp", "position")
_SHOW = 5


def validate_comparisons(df: pd.DataFrame) -> pd.DataFrame:
    """Check a long table of comparison votes and return a clean copy.

    Returns
    -------
    pandas.DataFrame
        ``rater, dataset, image, method_a, method_b`` as strings, ``choice`` as ``"a"``/``"b"``,
        ``winner`` and ``loser`` (method names), ``kind`` (stripped, lower-cased, default
        ``"rating"``), ``timestamp`` (UTC) and ``position`` (int64) when present, other columns
        unchanged; the index is reset, the row order kept (it is the order votes were cast).

    Raises
    ------
    VotesError
        Not a DataFrame; no rows; a required column missing; an identifier empty; a method
        compared with itself; a choice that is neither of the two methods nor ``a``/``b``; an
        unparseable timestamp; a negative or non-integer position. Up to five offending rows are
        named by their index label.
    AmbiguousChoiceError
        Methods named like the sides (``a``, ``b``) and a choice that reads two ways: the
        file-wide reading (names, or letters) is taken when only one of them explains some rows,
        else the file is refused (:func:`_chosen_a`).
    """
    check_table(df, "comparisons", REQUIRED, OPTIONAL)
    out = df.copy(deep=False)
    for col in REQUIRED[:5]:
        bad = out.index[out[col].isna() | (out[col].astype(str).str.strip() == "")]
        if len(bad):
            raise VotesError(f"column {col!r} is empty in {_rows(bad)}")
        out[col] = out[col].astype(str)
    same = out.index[out["method_a"] == out["method_b"]]
    if len(same):
        raise VotesError(f"method_a and method_b are the same method in {_rows(same)}")
    is_a = _chosen_a(out)
    out["choice"] = np.where(is_a, "a", "b")
    out["winner"] = np.where(is_a, out["method_a"], out["method_b"])
    out["loser"] = np.where(is_a, out["method_b"], out["method_a"])
    kind = _kinds(out["kind"] if "kind" in out.columns else None, len(out))
    out["kind"] = kind.astype(str).to_numpy()  # by position: the caller's index may be anything
    if "timestamp" in out.columns:
        ts = pd.to_datetime(out["timestamp"], errors="coerce", utc=True)
        bad = out.index[ts.isna() & out["timestamp"].notna()]
        if len(bad):
            raise VotesError(f"timestamp cannot be parsed in {_rows(bad)}")
        out["timestamp"] = ts
    if "position" in out.columns:
        out["position"] = _counts(out["position"], "position")
    first = [*REQUIRED, "winner", "loser", "kind"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


class AmbiguousChoiceError(VotesError):
    """A choice reads as a side letter and as a method name, and the two name different methods."""


def _chosen_a(out: pd.DataFrame) -> np.ndarray:
    """Whether method_a was chosen, per row, reading ``choice`` once.

    A ``winner`` column naming one of the row's methods (a table this function validated
    before, or its CSV export) decides: validating twice must not read the ``"a"``/``"b"`` it
    wrote as method names. Otherwise a choice is a method name or a side letter; where a row
    reads both ways (a method named ``a`` and choice ``"a"``, shown on side b), the file decides
    when only names (or only letters) explain its other rows, and is refused when nothing does.
    """
    raw = out["choice"].astype(str).str.strip()
    name_a, name_b = (raw == out["method_a"]).to_numpy(), (raw == out["method_b"]).to_numpy()
    low = raw.str.lower().to_numpy()
    side_a, side_b = low == "a", low == "b"
    by_name, by_side = name_a | name_b, side_a | side_b
    bad = out.index[~(by_name | by_side) | out["choice"].isna().to_numpy()]
    if len(bad):
        values = ", ".join(repr(v) for v in out.loc[bad[:_SHOW], "choice"])
        raise VotesError(
            f"choice is neither method_a, method_b, 'a' nor 'b' in {_rows(bad)} (values {values})"
        )
    if "winner" in out.columns:
        w = out["winner"].astype(str)
        won_a, won_b = (w == out["method_a"]).to_numpy(), (w == out["method_b"]).to_numpy()
        if (won_a | won_b).all():
            wrong = out.index[~np.where(won_a, name_a | side_a, name_b | side_b)]
            if len(wrong):
                raise VotesError(f"winner and choice name different methods in {_rows(wrong)}")
            return won_a
    two_ways = by_name & by_side & (name_a != side_a)
    if not two_ways.any():
        return np.where(by_name, name_a, side_a)
    names, sides = (by_name & ~by_side).any(), (by_side & ~by_name).any()
    if names != sides:
        return np.where(by_name, name_a, side_a) if names else np.where(by_side, side_a, name_a)
    rows = out.index[two_ways]
    example = out.loc[rows[0]]
    raise AmbiguousChoiceError(
        f"choice reads two ways in {_rows(rows)}: methods are named like the sides 'a'/'b', so "
        f"{example['choice']!r} (method_a {example['method_a']!r}, method_b "
        f"{example['method_b']!r}) could be either method"
        + (", and the file mixes method names and side letters" if names else "")
        + ". Write the chosen method's name in every row, or rename the methods."
    )


def comparisons(votes: pd.DataFrame, kinds: tuple[str, ...] = ("rating",)) -> pd.DataFrame:
    """Validated comparison votes of the given kinds only (by default the test trials)."""
    if _TRUSTED.get() == (id(votes), tuple(kinds)):
        return votes
    v = validate_comparisons(votes)
    sel = v[v["kind"].isin(kinds)]
    if sel.empty:
        raise VotesError(
            f"no comparisons of kind {', '.join(kinds)} "
            f"(kinds present: {', '.join(sorted(v['kind'].unique()))})"
        )
    return sel.reset_index(drop=True)


# The frame a report validated once, while it computes its tables from it (:func:`trusting`).
_TRUSTED: ContextVar[tuple | None] = ContextVar("srmos_trusted_comparisons", default=None)


@contextmanager
def trusting(votes: pd.DataFrame, kinds: tuple[str, ...] = ("rating",)) -> Iterator[pd.DataFrame]:
    """Validate ``votes`` once (:func:`comparisons`) and, inside the block, let every function
    of this package that takes comparison votes use that frame as it is, instead of validating
    it again (the report's five tables each did: a tenth of a second each at 7,800 votes).
    Only that very object, and the same kinds, skip the check."""
    v = comparisons(votes, kinds)
    token = _TRUSTED.set((id(v), tuple(kinds)))
    try:
        yield v
    finally:
        _TRUSTED.reset(token)


def count_matrix(
    votes: pd.DataFrame,
    dataset: str | None = None,
    image: str | None = None,
    methods: list[str] | None = None,
    kinds: tuple[str, ...] = ("rating",),
) -> pd.DataFrame:
    """The pwcmp comparison matrix of one condition: ``C[i, j]`` = times i was chosen over j.

    ``dataset`` (needed when the votes hold several) and optionally ``image`` select the
    condition; without ``image`` the images of the dataset are pooled. Rows and columns follow
    ``methods`` (default: the methods compared there, alphabetically); int64 counts.
    """
    v = comparisons(votes, kinds)
    if dataset is None:
        names = v["dataset"].unique()
        if len(names) > 1:
            raise VotesError(f"votes hold several datasets ({', '.join(sorted(names))}): name one")
        dataset = names[0]
    v = v[v["dataset"] == str(dataset)]
    if image is not None:
        v = v[v["image"] == str(image)]
    if v.empty:
        raise VotesError(f"no comparisons for dataset {dataset!r}, image {image!r}")
    if methods is None:
        methods = sorted(set(v["method_a"]) | set(v["method_b"]))
    index = {m: k for k, m in enumerate(methods)}
    unknown = sorted((set(v["winner"]) | set(v["loser"])) - set(index))
    if unknown:
        raise VotesError(f"methods compared but not listed: {', '.join(unknown)}")
    c = np.zeros((len(methods), len(methods)), dtype=np.int64)
    np.add.at(c, (v["winner"].map(index).to_numpy(), v["loser"].map(index).to_numpy()), 1)
    return pd.DataFrame(c, index=pd.Index(methods, name="winner"), columns=methods)


def check_counts(counts) -> np.ndarray:
    """A copy of a square count matrix as float, diagonal zeroed; VotesError if malformed."""
    c = np.asarray(counts, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or len(c) < 2:
        raise VotesError(f"a count matrix must be square with 2+ methods, got shape {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any() or (c != np.round(c)).any():
        raise VotesError("a count matrix holds non-negative integers only")
    c = c.copy()
    np.fill_diagonal(c, 0)
    return c


def link_components(counts) -> np.ndarray:
    """pwcmp's patch for a disconnected comparison graph: the best condition of each component
    (by the ISO 20462 initial score) is tied once with the best of every other (1:1 votes)."""
    c = check_counts(counts)
    n, label = components(c > 0)
    if n == 1:
        return c
    with np.errstate(invalid="ignore"):
        p = np.where(c + c.T > 0, c / (c + c.T), 0.5)
    q0 = -(12 / np.pi * np.arcsin(np.sqrt(p)) - 3).sum(axis=0) / 2
    best = [np.flatnonzero(label == g)[np.argmax(q0[label == g])] for g in range(n)]
    for a in range(n):
        for b in range(a + 1, n):
            c[best[a], best[b]] = c[best[b], best[a]] = 1
    return c


def identified(counts) -> bool:
    """Whether plain maximum likelihood is finite: the graph of "i beat j at least once" is
    strongly connected (Zermelo 1929; Ford 1957), after pwcmp's linking of components."""
    c = link_components(counts)
    return strongly_connected(c > 0)


def _tensor(block: np.ndarray, n_blocks: int, v: pd.DataFrame, methods) -> np.ndarray:
    """Comparison matrices of ``n_blocks`` blocks: ``c[b, i, j]`` = times i beat j in block b."""
    index = {m: k for k, m in enumerate(methods)}
    c = np.zeros((n_blocks, len(methods), len(methods)), dtype=np.int64)
    np.add.at(c, (block, v["winner"].map(index).to_numpy(), v["loser"].map(index).to_numpy()), 1)
    return c


def per_unit_counts(
    v: pd.DataFrame, methods: Sequence[str], unit: str = "rater"
) -> tuple[np.ndarray, np.ndarray]:
    """Each rater's (``unit="rater"``) or image's comparison matrix over ``methods`` in one
    block of validated votes.

    Returns the sorted unit names and an int64 array of shape (units, methods, methods).
    """
    names, r = np.unique(v[unit].to_numpy(dtype=str), return_inverse=True)
    return names, _tensor(r.ravel(), len(names), v, methods)


def per_rater_counts(v: pd.DataFrame, methods: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each rater's comparison matrix: :func:`per_unit_counts` by rater."""
    return per_unit_counts(v, methods, "rater")


def _pair_tallies(v: pd.DataFrame, by: list[str], method_order) -> pd.DataFrame:
    """One row per block and unordered pair: ``method_a`` first in ``method_order``, its wins."""
    methods = order_methods(set(v["method_a"]) | set(v["method_b"]), method_order)
    rank = {m: k for k, m in enumerate(methods)}
    first = v["winner"].map(rank) < v["loser"].map(rank)
    t = v.assign(
        method_a=np.where(first, v["winner"], v["loser"]),
        method_b=np.where(first, v["loser"], v["winner"]),
        _a=first.astype(np.int64),
    )
    g = t.groupby([*by, "method_a", "method_b"], sort=True)
    out = g.agg(n=("_a", "size"), wins_a=("_a", "sum"), n_raters=("rater", "nunique"))
    out = out.reset_index()
    out["wins_b"] = out["n"] - out["wins_a"]
    return sort_rows(out, [*by, "method_a", "method_b"], methods)


def comparison_counts(
    votes: pd.DataFrame,
    per_image: bool = False,
    method_order: Sequence[str] | None = None,
    kinds: tuple[str, ...] = ("rating",),
) -> pd.DataFrame:
    """How often each method won against each other, per dataset (images pooled) or per image.

    Returns
    -------
    pandas.DataFrame
        ``dataset, [image,] method_a, method_b`` (``method_a`` first in ``method_order``,
        alphabetical by default), ``n`` (comparisons), ``wins_a``, ``wins_b``, ``p_a`` (share of
        comparisons won by a), ``n_raters`` and ``unanimous`` (one method won every time).
    """
    by = ["dataset", "image"] if per_image else ["dataset"]
    out = _pair_tallies(comparisons(votes, kinds), by, method_order)
    out["p_a"] = out["wins_a"] / out["n"]
    out["unanimous"] = (out["wins_a"] == 0) | (out["wins_b"] == 0)
    return out[
        [*by, "method_a", "method_b", "n", "wins_a", "wins_b", "p_a", "n_raters", "unanimous"]
    ]
