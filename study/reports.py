"""From a campaign's rows to the long-format frames that study.analysis takes."""

import io
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
from django.core.cache import cache
from django.db.models import Count, Max

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
        )
    )
    # rater_platform tells real sessions ("link", "prolific", "mturk"...) from "simulated" ones.
    frame = pd.DataFrame(
        [
            (f"r{r}", d, i, m, s, k, rep, t.isoformat(), ms, f, p)
            for r, d, i, m, s, k, rep, t, ms, f, p in rows
        ],
        columns=[*VOTE_COLUMNS, "duration_ms", "flags", "rater_platform"],
    )
    # How the LR inputs were made travels with every export (the campaign's LR source).
    frame["lr"] = campaign.lr_description()
    return frame.astype({"score": "int64", "repeat": "int64"})


def objective_frame(campaign):
    rows = campaign.candidates.filter(status=Candidate.DONE).values_list(
        "image__dataset__name", "image__name", "method__slug", "psnr", "ssim"
    )
    return pd.DataFrame(list(rows), columns=["dataset", "image", "method", "psnr", "ssim"])


def mos_csv(campaign):
    votes = votes_frame(campaign)
    columns = ["dataset", "method", "n", "mos", "std", "ci95_low", "ci95_high"]
    table = mos_table(votes) if len(votes) else pd.DataFrame(columns=columns)
    table["lr"] = campaign.lr_description()
    return table.to_csv(index=False)


def export_report(campaign, out_dir):
    """Write the full analysis report of a campaign into out_dir; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    votes = votes_frame(campaign)
    if votes.empty:
        raise ValueError(f"campaign {campaign.name} has no votes yet: nothing to report")
    paths = write_report(votes, out_dir, objective=objective_frame(campaign))
    meta = out_dir / "campaign.txt"
    meta.write_text(
        f"campaign: {campaign.name}\nscale: {campaign.scale}\nkernel: {campaign.kernel}\n"
        f"lr_source: {campaign.lr_description()}\n"
        f"seed: {campaign.seed}\nstatus: {campaign.status}\n"
    )
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


REPORT_SECTIONS = [
    ("table2.csv", "PSNR / SSIM / MOS per method (the paper's Table 2 layout)", ""),
    ("mos.csv", "MOS per method and dataset", "95% CI: t(0.975, n-1) s / sqrt(n)."),
    (
        "significance.csv",
        "Paired Wilcoxon signed-rank tests",
        "Paired per rater and image; raw, Holm and Benjamini-Hochberg p.",
    ),
    ("friedman.csv", "Friedman omnibus test", ""),
    (
        "raters.csv",
        "Rater screening (reported, never applied)",
        "mos_screened.csv in the zip shows MOS with and without the flagged raters.",
    ),
    ("reliability.csv", "Reliability", ""),
    ("correlation.csv", "MOS against PSNR / SSIM", ""),
    ("power.csv", "Smallest detectable MOS difference", ""),
]


def report_context(campaign):
    """Tables (as HTML) and plots (base64 PNG) of the full report, for the admin report page.

    Cached until a vote arrives: the live page refreshes every 30 s, the analysis takes seconds.
    """
    votes = Trial.objects.answered().filter(rater__campaign=campaign)
    state = votes.aggregate(n=Count("id"), last=Max("answered_at"))
    key = f"srmos-report-{campaign.pk}-{state['n']}-{state['last']}"
    context = cache.get(key)
    if context is None:
        context = _report_context(campaign)
        cache.set(key, context, timeout=3600)
    return context


def _report_context(campaign):
    import base64
    import json

    with tempfile.TemporaryDirectory() as tmp:
        paths = export_report(campaign, tmp)
        sections = []
        for name, title, help_text in REPORT_SECTIONS:
            if name not in paths:
                continue
            table = pd.read_csv(paths[name])
            html = table.to_html(
                index=False, float_format=lambda x: f"{x:.4g}", na_rep="-", border=0
            )
            sections.append({"title": title, "help": help_text, "html": html})
        plots = [
            {"title": title, "data": base64.b64encode(paths[name].read_bytes()).decode()}
            for name, title in [
                ("mos_ci.png", "MOS with 95% confidence intervals"),
                ("score_distribution.png", "Distribution of scores per method"),
                ("mos_vs_psnr.png", "MOS against PSNR"),
            ]
            if name in paths
        ]
        manifest = json.loads(paths["manifest.json"].read_text())
    return {"sections": sections, "plots": plots, "manifest": manifest}
