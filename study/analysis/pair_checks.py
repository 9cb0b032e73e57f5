"""Quality control of one paired-comparison session, for the live admin page (plain Python).

The ACR checks do not carry over: a choice of A (1) or B (2) has no variance worth reading and a
retest shows its pair with the sides swapped. A session is instead checked for a side bias (one
side chosen almost always: a rater pressing one key) and for retests that contradict their
original (the other version chosen when the same pair came back).
"""

from __future__ import annotations

from collections.abc import Iterable

SIDE_BIAS_MIN_VOTES = 10
SIDE_BIAS_SHARE = 0.9  # one side chosen in at least 90% of the comparisons
RETEST_MIN_PAIRS = 3


def pair_session_quality(votes: Iterable[tuple], display_checks: Iterable[dict] = ()) -> dict:
    """Summarise one paired-comparison session.

    Parameters
    ----------
    votes : iterable of tuple
        ``(candidate_id, partner_id, score, kind, duration_ms)`` per answered trial; score 1 when
        A (the candidate) was chosen, 2 for B (the partner); kind ``"rating"`` or ``"retest"``.
    display_checks : iterable of dict
        The page's display-size checks; one with ``went_on_anyway`` true raises a flag.

    Returns
    -------
    dict
        ``n`` (first showings), ``n_answered``, ``share_a`` (share of first showings answered A;
        None without votes), ``retest_pairs`` (retests whose original was answered),
        ``retest_agreement`` (share of those where the same version won again; None without
        pairs), ``median_duration_ms`` and ``flags``: ``side-bias`` (at least
        ``SIDE_BIAS_MIN_VOTES`` first showings, one side chosen in 90% or more),
        ``retest-unreliable`` (``RETEST_MIN_PAIRS`` pairs or more, under half agreeing) and
        ``display-too-small``. The keys of the ACR summary it shares (``variance,
        gold_items, gold_misses, retest_mad``) are None or 0, so one admin column shows both.
    """
    votes = list(votes)
    first = [(c, p, s) for c, p, s, kind, _ in votes if kind == "rating"]
    n = len(first)
    share_a = sum(s == 1 for *_, s in first) / n if n else None
    winner = {frozenset((c, p)): c if s == 1 else p for c, p, s in first}
    agree = [
        winner[frozenset((c, p))] == (c if s == 1 else p)
        for c, p, s, kind, _ in votes
        if kind == "retest" and frozenset((c, p)) in winner
    ]
    agreement = sum(agree) / len(agree) if agree else None
    durations = sorted(d for *_, d in votes if d is not None)
    flags = []
    if n >= SIDE_BIAS_MIN_VOTES and max(share_a, 1 - share_a) >= SIDE_BIAS_SHARE:
        flags.append("side-bias")
    if len(agree) >= RETEST_MIN_PAIRS and agreement < 0.5:
        flags.append("retest-unreliable")
    if any(check.get("went_on_anyway") for check in display_checks):
        flags.append("display-too-small")
    return {
        "n": n,
        "n_answered": len(votes),
        "share_a": share_a,
        "variance": None,
        "gold_items": 0,
        "gold_misses": 0,
        "retest_pairs": len(agree),
        "retest_agreement": agreement,
        "retest_mad": None,
        "median_duration_ms": durations[len(durations) // 2] if durations else None,
        "flags": flags,
    }
