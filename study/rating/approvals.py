"""Approval lists for crowd platforms, from quality-control thresholds the researcher chooses.

srmos approves or rejects nobody: it writes the platform's bulk file (Prolific: participant id,
decision and reason; MTurk: the batch-results columns AssignmentId, WorkerId, Approve, Reject),
which the researcher reviews and uploads.
"""

from dataclasses import dataclass

from study.spreadsheet import csv_text

PLATFORMS = ("prolific", "mturk")


@dataclass(frozen=True)
class Thresholds:
    require_complete: bool = True
    max_gold_misses: int = 1
    reject_straightlining: bool = True
    min_median_seconds: float = 0.0


def reasons(rater, thresholds):
    """Why this session would be rejected under `thresholds` (empty: approve)."""
    qc = rater.qc if rater.completed_at and rater.qc else rater.quality()
    out = []
    if thresholds.require_complete and rater.completed_at is None:
        out.append(f"did not finish the session ({qc['n_answered']} of {rater.n_trials} images)")
    if qc["gold_misses"] > thresholds.max_gold_misses:
        out.append(
            f"missed {qc['gold_misses']} of {qc['gold_items']} check images (the original "
            "rated below 4 or the blocky version above 2)"
        )
    if thresholds.reject_straightlining and "straight-lining" in qc["flags"]:
        out.append("gave nearly the same score to every image")
    if thresholds.reject_straightlining and "side-bias" in qc["flags"]:
        out.append("chose the same side in nearly every comparison")
    median = qc["median_duration_ms"]
    if thresholds.min_median_seconds and median is not None:
        if median / 1000 < thresholds.min_median_seconds:
            out.append(f"looked at each image for {median / 1000:.1f} s (median)")
    return out


def approval_rows(campaign, platform, thresholds):
    """(rater, decision, reason) for the campaign's participants from `platform`."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}: {', '.join(PLATFORMS)}")
    raters = campaign.raters.filter(platform=platform).exclude(participant_id="")
    rows = []
    for rater in raters.order_by("created_at"):
        why = reasons(rater, thresholds)
        rows.append((rater, "reject" if why else "approve", "; ".join(why)))
    return rows


def approval_csv(campaign, platform, thresholds):
    """The platform's bulk file as text. Ids come from the platform's URL, written by anyone:
    a formula-like cell is neutralised (study.spreadsheet)."""
    rows = approval_rows(campaign, platform, thresholds)
    if platform == "mturk":
        header = ["AssignmentId", "WorkerId", "Approve", "Reject"]
        lines = [
            (
                rater.platform_data.get("assignmentId", ""),
                rater.participant_id,
                *(("x", "") if decision == "approve" else ("", why)),
            )
            for rater, decision, why in rows
        ]
    else:
        header = ["participant_id", "decision", "reason"]
        lines = [(rater.participant_id, decision, why) for rater, decision, why in rows]
    # CRLF, as the csv module writes by default and the platforms' own files have.
    return csv_text([header, *lines], lineterminator="\r\n")
