"""From a campaign's rows to the long-format frames that study.analysis takes, and the files
of the full report (CSV tables, plots, manifest) written from them."""

import io
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from study.analysis import mos_table, write_report
from study.models import Candidate, Trial

VOTE_COLUMNS = ["rater", "dataset", "image", "method", "score", "kind", "repeat", "timestamp"]


def votes_frame(campaign):
    rows = (
        Trial.objects.answered()
        .filter(rater__campaign=campaign)
        .order_by("rater_id", "position")
        .values_list(
            "rater_id",
            "candidate__image__dataset__name",
            "candidate__image__name",
            "candidate__method__slug",
            "score",
            "kind",
            "repeat",
            "answered_at",
            "duration_ms",
            "flags",
            "rater__platform",
            "expected",
            "position",
        )
    )
    # rater_platform tells real sessions ("link", "prolific", "mturk"...) from "simulated" ones;
    # expected marks gold items (">=4" HR, "<=2" nearest neighbour); position is the trial's
    # place in its session (retest distances).
    frame = pd.DataFrame(
        [
            (f"r{r}", d, i, m, s, k, rep, t.isoformat(), *rest)
            for r, d, i, m, s, k, rep, t, *rest in rows
        ],
        columns=[*VOTE_COLUMNS, "duration_ms", "flags", "rater_platform", "expected", "position"],
    )
    # How the LR inputs were made travels with every export, per method: imported results
    # may have been made from other LR images than the campaign's (Method.lr_input).
    frame["lr"] = frame["method"].map(method_lr(campaign)).astype(object)
    return frame.astype({"score": "int64", "repeat": "int64", "position": "int64"})


def method_lr(campaign):
    """{method slug: how its LR inputs were made} for every method of the campaign."""
    return {m.slug: campaign.lr_of(m) for m in campaign.methods.all()}


def objective_frame(campaign):
    rows = campaign.candidates.filter(status=Candidate.DONE).values_list(
        "image__dataset__name", "image__name", "method__slug", "psnr", "ssim"
    )
    return pd.DataFrame(list(rows), columns=["dataset", "image", "method", "psnr", "ssim"])


def mos_csv(campaign):
    votes = votes_frame(campaign)
    columns = ["dataset", "method", "n", "mos", "std", "ci95_low", "ci95_high"]
    table = mos_table(votes) if len(votes) else pd.DataFrame(columns=columns)
    table["lr"] = table["method"].map(method_lr(campaign)).astype(object)
    return table.to_csv(index=False)


def export_report(campaign, out_dir):
    """Write the full analysis report of a campaign into out_dir; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    votes = votes_frame(campaign)
    if votes.empty:
        raise ValueError(f"campaign {campaign.name} has no votes yet: nothing to report")
    paths = write_report(
        votes,
        out_dir,
        objective=objective_frame(campaign),
        min_var=campaign.straightline_min_variance,  # the live flags' threshold
    )
    meta = out_dir / "campaign.txt"
    lines = [
        f"campaign: {campaign.name}",
        f"scale: {campaign.scale}",
        f"kernel: {campaign.kernel}",
        f"lr_source: {campaign.lr_description()}",
        f"seed: {campaign.seed}",
        f"status: {campaign.status}",
        f"vote_floor_ms: {campaign.vote_floor_ms}",
        "lr_per_method:",
        *(f"  {slug}: {lr}" for slug, lr in sorted(method_lr(campaign).items())),
    ]
    warnings = campaign.lr_warnings()
    if warnings:
        lines += ["warnings:", *(f"  LR inputs differ. {w}" for w in warnings)]
    meta.write_text("\n".join(lines) + "\n")
    paths["campaign.txt"] = meta
    return paths


def report_zip(campaign):
    with tempfile.TemporaryDirectory() as tmp:
        export_report(campaign, tmp)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(tmp))
        return buffer.getvalue()
