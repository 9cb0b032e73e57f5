"""From a campaign's rows to the long-format frames that study.analysis takes, and the files
of the full report (CSV tables, plots, manifest) written from them."""

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from study.analysis import draw_figures, mos_table, plots, validate_votes, write_report
from study.analysis.jod import jod_table
from study.analysis.pairwise import validate_comparisons
from study.analysis.pc_report import write_comparison_report
from study.models import Candidate, Method, Trial
from study.models.catalog import paper_order
from study.models.session import comparison_votes

VOTE_COLUMNS = ["rater", "dataset", "image", "method", "score", "kind", "repeat", "timestamp"]


def votes_frame(campaign):
    rows = (
        Trial.objects.answered()
        .filter(rater__campaign=campaign)
        .exclude(rater__platform="preview")  # the researcher's walk-through is no data
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


def votes_csv(campaign):
    """The campaign's votes as the report zip's ``votes.csv`` holds them: validated by
    study.analysis (scores as numbers, UTC timestamps, gold thresholds), same columns and order.
    A header line alone before the first vote. A paired campaign's are its comparisons, in the
    long format of the zip's ``comparisons.csv``."""
    if campaign.protocol == campaign.PC:
        comparisons = comparison_votes(campaign)
        return (validate_comparisons(comparisons) if len(comparisons) else comparisons).to_csv(
            index=False
        )
    votes = votes_frame(campaign)
    if votes.empty:
        return votes.to_csv(index=False)
    return validate_votes(votes).to_csv(index=False)


def method_order(campaign):
    """The campaign's method slugs in the paper's order: interpolation, networks, imported, HR."""
    return [m.slug for m in paper_order(campaign.methods.all())]


def method_lr(campaign):
    """{method slug: how its LR inputs were made} for every method of the campaign."""
    return {m.slug: campaign.lr_of(m) for m in paper_order(campaign.methods.all())}


def method_provenance(campaign):
    """{method slug: what made its images, in words} for every method of the campaign: own
    networks by their file's hash, architecture and route, so an export names the exact model."""
    out = {}
    for m in paper_order(campaign.methods.select_related("registration")):
        reg = getattr(m, "registration", None)
        if reg is not None:
            half = ", half precision" if m.parameters.get("half") else ""
            out[m.slug] = (
                f"own network {reg.architecture} (route {reg.detected_route}, file "
                f"{reg.original_name}, sha256 {reg.sha256}, {reg.parameter_count:,} parameters, "
                f"x{reg.scale}{half})"
            )
        elif m.kind == Method.NETWORK:
            out[m.slug] = f"built-in network {m.sr_method} (sr_models/checkpoints)"
        else:
            out[m.slug] = m.get_kind_display().lower()
    return out


def objective_frame(campaign):
    """One row per made candidate: ``dataset, image, method, psnr, ssim`` and a column per
    metric of the campaign (NaN where it is missing; `missing_metrics_frame` says why)."""
    rows = campaign.candidates.filter(status=Candidate.DONE).values_list(
        "image__dataset__name", "image__name", "method__slug", "psnr", "ssim", "metrics"
    )
    names = list(campaign.metrics)
    records = [(*row[:5], *((row[5] or {}).get(name, np.nan) for name in names)) for row in rows]
    return pd.DataFrame(records, columns=["dataset", "image", "method", "psnr", "ssim", *names])


def missing_metrics_frame(campaign):
    """``dataset, image, method, metric, reason`` for each metric a made candidate lacks."""
    rows = campaign.candidates.filter(status=Candidate.DONE).values_list(
        "image__dataset__name", "image__name", "method__slug", "metrics", "metric_notes"
    )
    out = []
    for dataset, image, method, values, notes in rows:
        for name in campaign.metrics:
            if name not in (values or {}):
                reason = (notes or {}).get(name, "not computed yet (Compute missing metrics)")
                out.append((dataset, image, method, name, reason))
    return pd.DataFrame(out, columns=["dataset", "image", "method", "metric", "reason"])


def mos_csv(campaign):
    """MOS per method and dataset; for a paired campaign, its JOD scale (jod.csv)."""
    if campaign.protocol == campaign.PC:
        comparisons = comparison_votes(campaign)
        if comparisons.empty:
            return "dataset,method,jod,ci95_low,ci95_high\n"
        return jod_table(comparisons, method_order=method_order(campaign)).to_csv(index=False)
    votes = votes_frame(campaign)
    columns = ["dataset", "method", "n", "mos", "std", "ci95_low", "ci95_high"]
    table = (
        mos_table(votes, method_order=method_order(campaign))
        if len(votes)
        else pd.DataFrame(columns=columns)
    )
    table["lr"] = table["method"].map(method_lr(campaign)).astype(object)
    return table.to_csv(index=False)


def export_report(campaign, out_dir, plots_enabled=True, downloads=True):
    """Write the full analysis report of a campaign into out_dir; returns the paths written.

    Methods appear in the paper's order in every table and figure. The live report page leaves
    out the figures (drawn apart, see draw_report_figures) and the download-only files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if campaign.protocol == campaign.PC:
        comparisons = comparison_votes(campaign)
        if comparisons.empty:
            raise ValueError(f"campaign {campaign.name} has no comparisons yet: nothing to report")
        mos = None
        if campaign.mos_campaign_id:
            rated = votes_frame(campaign.mos_campaign)
            mos = mos_table(rated) if len(rated) else None
        paths = write_comparison_report(
            comparisons,
            out_dir,
            method_order=method_order(campaign),
            mos=mos,
            downloads=downloads,
            plots_enabled=plots_enabled,
        )
    else:
        paths = write_report(
            _votes_to_report(campaign),
            out_dir,
            objective=objective_frame(campaign),
            min_var=campaign.straightline_min_variance,  # the live flags' threshold
            plots_enabled=plots_enabled,
            method_order=method_order(campaign),
            downloads=downloads,
        )
    missing = missing_metrics_frame(campaign)
    if len(missing):
        missing.to_csv(out_dir / "metrics_missing.csv", index=False)
        paths["metrics_missing.csv"] = out_dir / "metrics_missing.csv"
    meta = out_dir / "campaign.txt"
    lines = [
        f"campaign: {campaign.name}",
        f"scale: {campaign.scale}",
        f"kernel: {campaign.kernel}",
        f"lr_source: {campaign.lr_description()}",
        f"seed: {campaign.seed}",
        f"protocol: {campaign.get_protocol_display()}",
        f"status: {campaign.status}",
        f"vote_floor_ms: {campaign.vote_floor_ms}",
        "lr_per_method:",
        *(f"  {slug}: {lr}" for slug, lr in method_lr(campaign).items()),
        "methods:",
        *(f"  {slug}: {what}" for slug, what in method_provenance(campaign).items()),
    ]
    warnings = campaign.lr_warnings()
    if warnings:
        lines += ["warnings:", *(f"  LR inputs differ. {w}" for w in warnings)]
    meta.write_text("\n".join(lines) + "\n")
    paths["campaign.txt"] = meta
    return paths


def draw_report_figures(campaign, out_dir, formats=("svg",)):
    """The report's figures of a campaign (SVG only by default, as the report page shows them);
    for a paired comparison, the JOD scale with its intervals."""
    if campaign.protocol == campaign.PC:
        comparisons = comparison_votes(campaign)
        if comparisons.empty:
            raise ValueError(f"campaign {campaign.name} has no comparisons yet: nothing to report")
        jod = jod_table(comparisons, method_order=method_order(campaign))
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return plots.jod_ci(jod, out, method_order(campaign), formats)
    return draw_figures(
        _votes_to_report(campaign),
        out_dir,
        objective=objective_frame(campaign),
        method_order=method_order(campaign),
        formats=formats,
    )


def _votes_to_report(campaign):
    votes = votes_frame(campaign)
    if votes.empty:
        raise ValueError(f"campaign {campaign.name} has no votes yet: nothing to report")
    return votes


def report_zip(campaign):
    with tempfile.TemporaryDirectory() as tmp:
        export_report(campaign, tmp)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(tmp))
        return buffer.getvalue()
