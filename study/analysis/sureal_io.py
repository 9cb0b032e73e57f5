"""The votes in Netflix sureal's dataset format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .schema import STIMULUS, ratings

REFERENCE_METHODS = ("hr", "original", "reference", "gt")


def to_sureal_dataset(votes: pd.DataFrame, name: str = "srmos") -> dict[str, Any]:
    """Rating votes as a sureal dataset (a dict, JSON-serialisable).

    A content is one ``(dataset, image)``; each stimulus ``(dataset, image, method)`` is a
    ``dis_video`` whose ``os`` maps rater -> score, or rater -> list of scores in ``repeat``
    order when the rater voted more than once. Stimuli are listed sorted by dataset, image,
    method; ``asset_id`` is the position in that list. The reference of a content is its HR
    stimulus when one was rated (method named hr/original/reference/gt), else a path that no
    dis_video has.

    Returns
    -------
    dict
        ``dataset_name, ref_score (5), ref_videos`` (``content_id, content_name, path``),
        ``dis_videos`` (``content_id, asset_id, os, path, dataset, image, method``).

    References
    ----------
    Netflix sureal 0.9.0, ``sureal.dataset_reader.RawDatasetReader`` (JSON datasets load with
    ``sureal.tools.misc.import_json_file``).
    """
    r = ratings(votes).sort_values([*STIMULUS, "rater", "repeat"], kind="stable")
    stim = r[list(STIMULUS)].drop_duplicates().reset_index(drop=True)
    e = pd.MultiIndex.from_frame(stim).get_indexer(pd.MultiIndex.from_frame(r[list(STIMULUS)]))
    contents = stim[["dataset", "image"]].drop_duplicates()
    cid = {key: k for k, key in enumerate(zip(contents["dataset"], contents["image"], strict=True))}
    refs = {
        (d, i): f"{d}/{i}/{m}"
        for d, i, m in stim.itertuples(index=False)
        if m.lower() in REFERENCE_METHODS
    }
    ref_videos = [
        {
            "content_id": k,
            "content_name": f"{d}/{i}",
            "path": refs.get((d, i), f"{d}/{i}/__reference__"),
        }
        for (d, i), k in cid.items()
    ]
    os_: list[dict[str, Any]] = [{} for _ in range(len(stim))]
    for j, rater, score in zip(e.tolist(), r["rater"].tolist(), r["score"].tolist(), strict=True):
        prev = os_[j].get(rater)
        if prev is None:
            os_[j][rater] = score
        elif isinstance(prev, list):
            prev.append(score)
        else:
            os_[j][rater] = [prev, score]
    dis_videos = [
        {
            "content_id": cid[(d, i)],
            "asset_id": a,
            "os": os_[a],
            "path": f"{d}/{i}/{m}",
            "dataset": d,
            "image": i,
            "method": m,
        }
        for a, (d, i, m) in enumerate(stim.itertuples(index=False))
    ]
    return {
        "dataset_name": name,
        "ref_score": 5.0,
        "ref_videos": ref_videos,
        "dis_videos": dis_videos,
    }


def write_sureal_json(votes: pd.DataFrame, path: str | Path, name: str = "srmos") -> Path:
    """Write :func:`to_sureal_dataset` as JSON and return the path."""
    path = Path(path)
    path.write_text(json.dumps(to_sureal_dataset(votes, name)))
    return path
