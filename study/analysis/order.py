"""The order methods appear in, in every table and figure of the report.

A caller that knows the paper's order (srmos: interpolation, networks, imported results, HR)
passes it as a list of method names; without one, methods sort alphabetically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pandas as pd


def method_key(method_order: Sequence[str] | None = None) -> Callable[[str], tuple]:
    """Sort key of a method name: its place in ``method_order``, unlisted ones after it by name."""
    rank = {str(m): i for i, m in enumerate(method_order or ())}
    last = len(rank)
    return lambda m: (rank.get(str(m), last), str(m))


def order_methods(methods: Iterable[str], method_order: Sequence[str] | None = None) -> list[str]:
    """The distinct ``methods`` in ``method_order`` (alphabetical when it is None)."""
    return sorted({str(m) for m in methods}, key=method_key(method_order))


def sort_rows(
    df: pd.DataFrame,
    by: Sequence[str],
    method_order: Sequence[str] | None = None,
    method_columns: Sequence[str] = ("method", "method_a", "method_b"),
) -> pd.DataFrame:
    """``df`` sorted by the ``by`` columns, method columns in ``method_order``; a new index.

    Without ``method_order`` the frame comes back as it was (the analysis sorts alphabetically).
    """
    if not method_order or df.empty:
        return df
    key = method_key(method_order)

    def column_key(col: pd.Series) -> pd.Series:
        if col.name in method_columns:
            return col.map(lambda m: key(m)[0])
        return col

    # Stable: methods outside the order keep their alphabetical place among themselves.
    return df.sort_values(list(by), key=column_key, kind="stable").reset_index(drop=True)
