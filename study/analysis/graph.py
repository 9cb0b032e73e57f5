"""Connectivity of a comparison graph (a handful of methods) with numpy alone: the paired report
then does without scipy.sparse.csgraph, a tenth of a second of imports for a 9 x 9 matrix."""

from __future__ import annotations

import numpy as np


def reach(adj) -> np.ndarray:
    """``r[i, j]``: j can be reached from i along the edges of ``adj`` (i reaches itself)."""
    r = np.asarray(adj, dtype=bool) | np.eye(len(adj), dtype=bool)
    while True:
        longer = (r.astype(np.int64) @ r.astype(np.int64)) > 0  # paths twice as long
        if (longer == r).all():
            return r
        r = longer


def components(adj) -> tuple[int, np.ndarray]:
    """Connected components of the undirected graph ``adj | adj.T``: their number and each
    node's label, numbered in the order of their first node (as scipy's connected_components)."""
    a = np.asarray(adj, dtype=bool)
    first = reach(a | a.T).argmax(axis=1)  # the lowest node of each node's component
    _, labels = np.unique(first, return_inverse=True)
    return int(labels.max()) + 1 if len(labels) else 0, labels


def strongly_connected(adj) -> bool:
    """Whether every node reaches every other along the directed edges of ``adj``."""
    return bool(reach(adj).all())
