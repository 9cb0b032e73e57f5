"""From a campaign's rows to the long-format frames that study.analysis takes, and the files
of the full report (CSV tables, plots, manifest) written from them."""

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from study.analysis import validate_votes
from study.analysis.pairwise import validate_comparisons
from study.models import Candidate, Method
from study.models.catalog import paper_order
from study.spreadsheet import safe_csv


def votes_frame(campaign, people_only=False):
    """The campaign's votes as its protocol's analysis takes them (ratings, or comparisons)."""
    return campaign.kind.votes(campaign, people_only)


def votes_csv(campaign):
    """The campaign's votes as the report zip holds them (``votes.csv``, or a paired
    campaign's ``comparisons.csv``): validated by study.analysis, same columns and order. A
    header line alone before the first vote."""
    frame = votes_frame(campaign)
    if frame.empty:
        return frame.to_csv(index=False)
    validate = validate_comparisons if campaign.kind.analysis == "comparisons" else validate_votes
    return validate(frame).to_csv(index=False)


def method_order(campaign):
    """The campaign's method slugs in the paper's order: interpolation, networks, imported, HR."""
    return [m.slug for m in paper_order(campaign.methods.all())]


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
    """The protocol's table per method and dataset: MOS (DMOS for DCR), or a paired campaign's
    JOD scale (jod.csv)."""
    table = campaign.kind.summary_table(
        campaign, votes_frame(campaign), method_order=method_order(campaign)
    )
    return table.to_csv(index=False)


def _options(campaign, **extra):
    """What every protocol's report writer is given beside the votes."""
    return {"objective": objective_frame(campaign), "method_order": method_order(campaign), **extra}


def export_report(campaign, out_dir, plots_enabled=True, downloads=True):
    """Write the full analysis report of a campaign into out_dir; returns the paths written.

    Methods appear in the paper's order in every table and figure. The live report page leaves
    out the figures (drawn apart, see draw_report_figures) and the download-only files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = campaign.kind.write_report(
        campaign,
        _votes_to_report(campaign),
        out_dir,
        **_options(campaign, plots_enabled=plots_enabled, downloads=downloads),
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
        *(f"  {slug}: {lr}" for slug, lr in campaign.lr_by_method().items()),
        "methods:",
        *(f"  {slug}: {what}" for slug, what in method_provenance(campaign).items()),
    ]
    warnings = campaign.lr_warnings()
    if warnings:
        lines += ["warnings:", *(f"  LR inputs differ. {w}" for w in warnings)]
    meta.write_text("\n".join(lines) + "\n")
    paths["campaign.txt"] = meta
    return paths


def report_tables(campaign):
    """The live report's tables as DataFrames, and its manifest as a dict, under their file
    names: computed in memory, without the figures or the download-only files."""
    tables = {}
    campaign.kind.write_report(
        campaign, _votes_to_report(campaign), None, **_options(campaign, tables=tables)
    )
    return tables


def draw_report_figures(campaign, out_dir, formats=("svg",)):
    """The report's figures of a campaign (SVG only by default, as the report page shows them);
    for a paired comparison, the JOD scale with its intervals."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = _votes_to_report(campaign)
    return campaign.kind.draw_figures(campaign, frame, out, formats, **_options(campaign))


def _votes_to_report(campaign):
    frame = votes_frame(campaign)
    if frame.empty:
        noun = "comparisons" if campaign.kind.analysis == "comparisons" else "votes"
        raise ValueError(f"campaign {campaign.name} has no {noun} yet: nothing to report")
    return frame


def report_zip(campaign):
    """The full report as a zip for download. Its CSV files are study.analysis's own, with
    formula-like text cells neutralised for the spreadsheet (study.spreadsheet)."""
    with tempfile.TemporaryDirectory() as tmp:
        export_report(campaign, tmp)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(Path(tmp).rglob("*")):
                if path.suffix == ".csv":
                    text = path.read_text(encoding="utf-8")
                    zf.writestr(str(path.relative_to(tmp)), safe_csv(text))
                elif path.is_file():
                    zf.write(path, path.relative_to(tmp))
        return buffer.getvalue()
