"""From a campaign's rows to the long-format frames that study.analysis takes, and the files
of the full report (CSV tables, plots, manifest) written from them."""

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from study.analysis import validate_votes
from study.analysis.files import atomic_folder, moved
from study.analysis.pairwise import validate_comparisons
from study.models import Candidate, Method
from study.models.catalog import paper_order
from study.reports.snapshot import snapshot, vote_state
from study.spreadsheet import safe_csv


def votes_frame(campaign, people_only=False):
    """The campaign's votes as its protocol's analysis takes them (ratings, or comparisons)."""
    return campaign.kind.votes(campaign, people_only)


def votes_csv(campaign):
    """The campaign's votes as the report zip holds them (``votes.csv``, or a paired
    campaign's ``comparisons.csv``): validated by study.analysis, same columns and order. A
    header line alone before the first vote."""
    return votes_csv_of(campaign, votes_frame(campaign))


def votes_csv_of(campaign, frame):
    """:func:`votes_csv` of a frame already read (in the caller's snapshot)."""
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


def mos_csv(campaign, frame=None):
    """The protocol's table per method and dataset: MOS (DMOS for DCR), or a paired campaign's
    JOD scale (jod.csv)."""
    frame = votes_frame(campaign) if frame is None else frame
    table = campaign.kind.summary_table(campaign, frame, method_order=method_order(campaign))
    return table.to_csv(index=False)


def export(campaign, kind):
    """``(csv text, votes it reflects)`` of one CSV export ("votes" or "mos"): the votes and
    everything the table needs read in one snapshot, and their count."""
    with snapshot():
        frame = votes_frame(campaign)
        text = votes_csv_of(campaign, frame) if kind == "votes" else mos_csv(campaign, frame)
    return text, len(frame)


def report_options(campaign, **extra):
    """What every protocol's report writer is given beside the votes (read from the database:
    in the votes' snapshot where the two must agree)."""
    return {"objective": objective_frame(campaign), "method_order": method_order(campaign), **extra}


def export_report(campaign, out_dir, plots_enabled=True, downloads=True):
    """Write the full analysis report of a campaign into out_dir; returns the paths written.

    Methods appear in the paper's order in every table and figure. The live report page leaves
    out the figures (drawn apart, see draw_report_figures) and the download-only files. Every
    row the report reads is read in one transaction snapshot, and ``campaign.txt`` and
    ``manifest.json`` state how many votes it reflects. The files are written to a temporary
    folder and renamed into place: a failed export leaves no half-written report."""
    with atomic_folder(out_dir) as tmp, snapshot():
        paths = _write_report(campaign, tmp, plots_enabled, downloads)
    return moved(paths, tmp, out_dir)


def _write_report(campaign, out_dir, plots_enabled, downloads):
    frame = votes_to_report(campaign)
    paths = campaign.kind.write_report(
        campaign,
        frame,
        out_dir,
        **report_options(campaign, plots_enabled=plots_enabled, downloads=downloads),
    )
    # Counted after the analysis, in the same snapshot: the count of the votes analysed.
    state = vote_state(campaign)
    as_of = {
        "n_votes": len(frame),
        "n_answered_trials": state.n_answered,
        "last_vote_at": state.last_vote_at.isoformat() if state.last_vote_at else None,
        "note": "every table and figure of this report reflects exactly these votes, read in "
        "one database snapshot",
    }
    manifest = paths.get("manifest.json")
    if manifest is not None:
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "as_of": as_of}, indent=1, default=str))
    missing = missing_metrics_frame(campaign)
    if len(missing):
        missing.to_csv(out_dir / "metrics_missing.csv", index=False)
        paths["metrics_missing.csv"] = out_dir / "metrics_missing.csv"
    meta = out_dir / "campaign.txt"
    last = f", the last at {as_of['last_vote_at']}" if as_of["last_vote_at"] else ""
    lines = [
        f"campaign: {campaign.name}",
        f"votes: {len(frame)} (this report reflects exactly these{last}; "
        f"{state.n_answered} answered trials in all)",
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


def report_tables(campaign, frame=None, options=None):
    """The live report's tables as DataFrames, and its manifest as a dict, under their file
    names: computed in memory, without the figures or the download-only files. ``options``:
    :func:`report_options`, read here when not given."""
    tables = {}
    frame = votes_to_report(campaign) if frame is None else frame
    options = report_options(campaign) if options is None else options
    campaign.kind.write_report(campaign, frame, None, **options, tables=tables)
    return tables


def draw_report_figures(campaign, out_dir, formats=("svg",), frame=None, options=None):
    """The report's figures of a campaign (SVG only by default, as the report page shows them);
    for a paired comparison, the JOD scale with its intervals. Reads nothing from the database
    when ``frame`` and ``options`` (:func:`report_options`) are given."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = votes_to_report(campaign) if frame is None else frame
    options = report_options(campaign) if options is None else options
    return campaign.kind.draw_figures(campaign, frame, out, formats, **options)


def rating_votes(campaign):
    """The campaign's rating votes with only the columns a MOS table reads (``rater, dataset,
    image, method, score, kind``; the preview left out as in every analysis): the live page's
    MOS of the votes now (study.reports.live.now), read in a fraction of the full frame's time.

    The votes are read as ids and the names joined here from the campaign's candidates (a
    thousand rows, not one per vote): the strings of a join per vote were most of the time."""
    from study.models import Trial

    # The MOS table needs no order: no sort of every vote.
    columns = (
        Trial.objects.for_analysis(campaign)
        .order_by()
        .columns("rater_id", "candidate_id", "score", "kind")
    )
    frame = pd.DataFrame(
        {
            "rater": np.asarray(columns["rater_id"], dtype=np.int64),
            "candidate": np.asarray(columns["candidate_id"], dtype=np.int64),
            "score": np.asarray(columns["score"], dtype=np.int64),
            "kind": np.array(columns["kind"], dtype=object),
        }
    )
    names = pd.DataFrame.from_records(
        list(
            Candidate.objects.filter(campaign=campaign).values_list(
                "pk", "image__dataset__name", "image__name", "method__slug"
            )
        ),
        columns=["candidate", "dataset", "image", "method"],
    ).set_index("candidate")
    frame = frame.join(names, on="candidate")
    if frame["method"].isna().any():  # a vote on another campaign's candidate: none is made so
        raise ValueError(f"campaign {campaign.name} has votes on candidates it does not hold")
    frame["rater"] = frame["rater"].map({r: Trial.rater_key(r) for r in frame["rater"].unique()})
    return frame[["rater", "dataset", "image", "method", "score", "kind"]]


def votes_to_report(campaign):
    """The campaign's analysis frame; ValueError when there is nothing to report yet."""
    frame = campaign.kind.report_votes(campaign)
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
