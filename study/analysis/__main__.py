"""``python -m study.analysis --votes VOTES.csv --out DIR [--objective METRICS.csv]``
``[--comparisons COMPARISONS.csv]``: ratings (ACR/DCR), paired comparisons, or both (then
``comparisons/mos_vs_jod.csv`` sets MOS against JOD).

An error names the rows of a file as a spreadsheet numbers them: the header is row 1, the first
vote row 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .files import atomic_folder
from .schema import VotesError


def _read(path: str, what: str) -> pd.DataFrame:
    """The CSV file's rows, labelled as a spreadsheet numbers them (the header is row 1), so
    that a validation error's "row 7" is the row the researcher sees when the file is open."""
    try:
        frame = pd.read_csv(path)
        frame.index = pd.RangeIndex(2, len(frame) + 2)
        return frame
    except FileNotFoundError:
        raise VotesError(f"{what} file not found: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise VotesError(f"{what} file {path} is not a readable CSV: {e}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m study.analysis", description=__doc__)
    p.add_argument("--votes", help="ratings: long-format CSV, one row per vote")
    p.add_argument(
        "--comparisons",
        help="paired comparisons: rater, dataset, image, method_a, method_b, choice per row",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--objective", help="CSV with dataset, image, method, psnr, ssim [, metrics]")
    p.add_argument("--ci", choices=("t", "normal"), default="t", help="MOS confidence interval")
    p.add_argument(
        "--pairing",
        choices=("rater_image", "rater", "none"),
        default="rater_image",
        help="pairing unit of the paper's Wilcoxon test (significance_paper.csv); "
        "significance.csv always takes raters and images as random",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG figures")
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    if not a.votes and not a.comparisons:
        p.error("give --votes (ratings), --comparisons (paired comparisons) or both")
    try:
        with atomic_folder(a.out) as tmp:
            files = _write(a, tmp)
    except (VotesError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {a.out}")
    return 0


def _write(a: argparse.Namespace, out: Path) -> dict[str, Path]:
    """Both reports into ``out`` (a temporary folder: the caller moves it into place)."""
    files, mos = {}, None
    if a.votes:
        # Imported on use: a comparisons-only run does not load the ratings' analysis.
        from .mos import mos_table
        from .report import write_report

        votes = _read(a.votes, "votes")
        objective = _read(a.objective, "objective") if a.objective else None
        files = write_report(
            votes,
            out,
            objective=objective,
            ci=a.ci,
            pairing=a.pairing,
            plots_enabled=not a.no_plots,
        )
        mos = mos_table(votes, ci=a.ci)
    if a.comparisons:
        from .pc_report import write_comparison_report

        written = write_comparison_report(
            _read(a.comparisons, "comparisons"),
            out / "comparisons" if a.votes else out,
            mos=mos,
            plots_enabled=not a.no_plots,
        )
        files |= {f"comparisons/{k}" if a.votes else k: v for k, v in written.items()}
    return files


if __name__ == "__main__":
    sys.exit(main())
