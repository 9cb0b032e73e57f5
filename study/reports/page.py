"""The live report page in the admin: the full report's tables as HTML and its plots inline,
recomputed only when a vote has arrived since."""

import base64
import json
import tempfile

import pandas as pd
from django.core.cache import cache
from django.db.models import Count, Max

from study.models import Trial
from study.reports.frames import export_report

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
    last = state["last"].timestamp() if state["last"] else 0
    key = f"srmos-report-{campaign.pk}-{state['n']}-{last:.6f}"
    context = cache.get(key)
    if context is None:
        context = _report_context(campaign)
        cache.set(key, context, timeout=3600)
    return context


def _report_context(campaign):
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
    warnings = [f"LR inputs differ. {w}" for w in campaign.lr_warnings()]
    return {"sections": sections, "plots": plots, "manifest": manifest, "warnings": warnings}
