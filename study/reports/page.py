"""The live report page in the admin: the report's tables, key columns first and rounded for
reading (the CSV files keep full precision), and its figures inline.

The page's context is computed by study.reports.live (a worker, when votes arrive) and kept in
the campaign's ReportCache row; this module turns the analysis' tables into it."""

import base64
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from study.analysis.mapping import FIT_FAILED
from study.reports.snapshot import vote_state

NA = "–"
# p-values read as the papers print them: three decimals, tiny ones as a bound.
P_COLUMNS = {"p", "p_holm", "p_bh", "wilcoxon_p", "srocc_p", "krocc_p", "spearman_p"}
# The paper's Table 2 prints PSNR to 2 decimals, SSIM to 4 and MOS to 2.
TABLE2_DIGITS = {"psnr": 2, "ssim": 4, "mos": 2}
MOS_SCALE = {
    c: 2
    for c in (
        *("mos", "dmos", "std", "median", "se_general"),
        *("ci95_low", "ci95_high", "ci95_low_general", "ci95_high_general"),
    )
}
# Text even when empty throughout (pandas then reads them as float NaN).
TEXT_COLUMNS = {"note", "flags"}


@dataclass(frozen=True)
class Section:
    file: str
    title: str
    help: str = ""
    # Shown first, in this order; the first column stays in view when the table scrolls sideways.
    key_columns: tuple[str, ...] = ()
    # Decimals per column where not 3 (values on the 1-5 scale read best with 2).
    decimals: dict = field(default_factory=dict)


SECTIONS = [
    Section(
        "table2.csv",
        "PSNR / SSIM / MOS per method (the paper's Table 2 layout)",
        key_columns=("dataset", "metric"),
    ),
    Section(
        "mos.csv",
        "Mean score per method and dataset (MOS; DMOS for DCR)",
        "Two 95% intervals: ci95_low_general / ci95_high_general generalise over raters and "
        "images (crossed random effects, Satterthwaite df), the one a claim about other people "
        "and other images needs; ci95_low / ci95_high are the ITU t-interval over the votes, "
        "t(0.975, n-1) s / sqrt(n), which takes these raters and images as fixed.",
        (
            *("dataset", "method", "mos", "dmos", "ci95_low_general", "ci95_high_general"),
            *("ci95_low", "ci95_high", "n", "n_raters", "std", "median"),
        ),
        MOS_SCALE,
    ),
    Section(
        "significance.csv",
        "Differences between methods, over raters and images",
        "Crossed random-effects t test on each pair's per rater x image differences (raters and "
        "images random, method x rater and method x image interactions; moments, Satterthwaite "
        "df), 95% CI of the difference, Holm per dataset: the verdicts above. The SRGAN paper's "
        "Wilcoxon test (raters and images fixed) is significance_paper.csv in the zip.",
        (
            *("dataset", "method_a", "method_b", "mos_a", "mos_b", "mean_diff"),
            *("ci95_low", "ci95_high", "p_holm", "p"),
        ),
        {"mos_a": 2, "mos_b": 2, "mean_diff": 2, "ci95_low": 2, "ci95_high": 2, "se": 2},
    ),
    Section(
        "friedman.csv",
        "Friedman omnibus test",
        key_columns=("dataset", "p", "kendall_w", "n_methods", "n_blocks"),
    ),
    Section(
        "raters.csv",
        "Rater screening (reported, never applied)",
        "mos_screened.csv in the zip shows MOS with and without the flagged raters.",
        ("rater", "flags", "flagged", "n_votes", "corr_with_others", "gold_pass_rate"),
    ),
    Section(
        "reliability.csv",
        "Reliability",
        key_columns=("dataset", "measure", "value", "ci95_low", "ci95_high"),
    ),
    Section(
        "correlation.csv",
        "MOS against PSNR / SSIM",
        key_columns=("dataset", "level", "metric", "srocc", "plcc", "krocc", "rmse", "n"),
    ),
    Section(
        "metric_panel.csv",
        "Which metric agrees with people (ITU-T P.1401)",
        "Each metric mapped onto MOS by the VQEG logistic; agreement = SROCC oriented so that "
        "higher agrees better; the full report (zip) adds bootstrap intervals and the "
        "significance of the differences between metrics (metric_comparison.csv).",
        (
            *("dataset", "level", "metric", "rank", "agreement", "plcc", "rmse"),
            *("outlier_ratio", "n", "n_reference", "n_missing"),
        ),
    ),
    Section(
        "jod.csv",
        "JOD scale from the paired comparisons (Thurstone Case V)",
        "1 JOD = 75% of raters prefer one over the other (pwcmp); the reference method at 0; "
        "95% intervals over raters and images (resamples of raters, images and comparisons "
        "combined, Satterthwaite df).",
        ("dataset", "method", "jod", "ci95_low", "ci95_high", "n", "n_raters", "note"),
        {"jod": 2, "ci95_low": 2, "ci95_high": 2, "se": 2},
    ),
    Section(
        "jod_differences.csv",
        "Differences between methods (JOD)",
        key_columns=("dataset", "method_a", "method_b"),
    ),
    Section(
        "rater_consistency.csv",
        "Rater consistency (circular triads, Kendall's zeta)",
        key_columns=("rater",),
    ),
    Section("agreement.csv", "Agreement between raters (Kendall's u)", key_columns=("dataset",)),
    Section("mos_vs_jod.csv", "MOS against JOD", key_columns=("dataset", "method")),
    Section(
        "power.csv",
        "Smallest detectable MOS difference",
        key_columns=("dataset", "n_raters", "n_images", "planned", "min_detectable_diff"),
        decimals={"min_detectable_diff": 2, "min_detectable_diff_corrected": 2},
    ),
]
PLOTS = [
    ("mos_ci.svg", "MOS with 95% intervals over raters and images"),
    ("score_distribution.svg", "Distribution of scores per method"),
    ("mos_vs_psnr.svg", "MOS against PSNR"),
    ("metric_panel.svg", "MOS against each metric, with the fitted logistic"),
    ("jod_ci.svg", "JOD with 95% confidence intervals (paired comparisons)"),
]


def report_version(campaign):
    """What the cached report depends on: the number of answered trials, the last answer and
    when metrics were last computed after generation."""
    return vote_state(campaign).version


def context_from_tables(tables):
    """The page's tables and manifest from the report's tables in memory (name -> DataFrame,
    and the manifest's dict), as ``frames.report_tables`` gives them."""
    sections = [table_section(s, tables[s.file]) for s in SECTIONS if s.file in tables]
    # The manifest as the zip's manifest.json holds it (numbers and text only).
    manifest = json.loads(json.dumps(tables["manifest.json"], default=str))
    return {"sections": sections, "manifest": manifest}


def plots_from_files(paths):
    """The page's figures, titled, from the SVG files of ``draw_figures`` (name -> path)."""
    return [
        {"title": title, **_svg(paths[name].read_bytes())} for name, title in PLOTS if name in paths
    ]


def section_of(file):
    """The page's :class:`Section` of a report file."""
    return next(section for section in SECTIONS if section.file == file)


def table_section(section, table):
    """One table for the page: key columns first, numbers rounded, plain-worded notes."""
    first = [c for c in section.key_columns if c in table.columns]
    columns = first + [c for c in table.columns if c not in first]
    table = table[columns]
    cells = {c: _column_cells(table, c, section.decimals.get(c, 3)) for c in columns}
    if section.file == "table2.csv":
        cells.update(_table2_cells(table))
    flagged = table["flagged"].astype(bool) if "flagged" in table else [False] * len(table)
    rows = [
        {"cells": [cells[c][i] for c in columns], "flagged": bool(flagged[i])}
        for i in range(len(table))
    ]
    return {
        "file": section.file,
        "title": section.title,
        "help": section.help,
        "notes": fit_failures(table),
        "columns": columns,
        "rows": rows,
    }


def _column_cells(table, column, digits):
    """(text, css class) per row of one column."""
    values = table[column]
    if column in TEXT_COLUMNS or column.endswith("_note"):
        return [(_text(v), "text") for v in values]
    if pd.api.types.is_bool_dtype(values):
        return [("yes" if v else "no", "bool") for v in values]
    if pd.api.types.is_integer_dtype(values):
        return [(str(v), "num") for v in values]
    if column in P_COLUMNS:
        return [(p_value(v), "num") for v in values]
    if pd.api.types.is_float_dtype(values):
        # Counts and rank statistics read from a CSV with gaps come back as floats.
        finite = values[values.map(math.isfinite)]
        whole = column not in MOS_SCALE and bool((finite == finite.round()).all())
        return [(number(v, 0 if whole else digits), "num") for v in values]
    return [(_text(v), "text") for v in values]


def _text(value):
    """A text cell: empty for NaN, yes/no for a flag in a column with gaps, notes in words."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return "" if pd.isna(value) else plain_note(str(value))


def _table2_cells(table):
    """Table 2's method columns, rounded per row as the paper prints each metric."""
    methods = [c for c in table.columns if c not in ("dataset", "metric")]
    digits = [TABLE2_DIGITS.get(m, 3) for m in table["metric"]]
    return {
        m: [(number(v, d), "num") for v, d in zip(table[m], digits, strict=True)] for m in methods
    }


def number(value, digits=3):
    """A float for reading: ``digits`` decimals (1 from 100 up), a dash for NaN, inf as such."""
    if value is None or pd.isna(value):
        return NA
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if digits and abs(value) >= 100:
        digits = 1
    return f"{value:.{digits}f}"


def p_value(p):
    """``0.003``, ``<0.001`` or a dash."""
    if p is None or pd.isna(p):
        return NA
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def plain_note(note):
    """A note as the page shows it: a failed fit in words, the optimiser's message left to the
    CSV file."""
    if note.startswith(FIT_FAILED):
        return note.split(" (", 1)[0]
    return note


def fit_failures(table):
    """One sentence about the rows whose logistic fit failed (correlation.csv), if any."""
    if "note" not in table:
        return []
    failed = table[table["note"].astype(str).str.startswith(FIT_FAILED)]
    if failed.empty:
        return []
    where = [
        f"{r.get('dataset', '')} {r.get('metric', '')} per {r.get('level', 'row')}"
        for _, r in failed.iterrows()
    ]
    return [
        f"The VQEG logistic could not be fitted for {len(failed)} of {len(table)} rows "
        f"({', '.join(where)}): their PLCC and RMSE are left empty, while SROCC, KROCC and the "
        "raw PLCC need no fit. The optimiser's message is in the note column of the CSV file."
    ]


def _svg(data):
    """An SVG inline (as an image, so its ids and styles cannot meet the page's), with its size
    in CSS pixels so the page keeps its layout while the image decodes."""
    head = data[:2000].decode("utf-8", "replace")
    size = {}
    for dim in ("width", "height"):
        match = re.search(rf'<svg[^>]*\b{dim}="([0-9.]+)pt"', head, re.S)
        size[dim] = round(float(match.group(1)) * 4 / 3) if match else ""  # 1 pt = 4/3 px
    return {"data": base64.b64encode(data).decode(), **size}
