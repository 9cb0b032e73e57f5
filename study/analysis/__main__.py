"""``python -m study.analysis --votes VOTES.csv --out DIR [--objective METRICS.csv]``."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from .report import write_report
from .schema import VotesError


def _read(path: str, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise VotesError(f"{what} file not found: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise VotesError(f"{what} file {path} is not a readable CSV: {e}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m study.analysis", description=__doc__)
    p.add_argument("--votes", required=True, help="long-format CSV, one row per vote")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--objective", help="CSV with dataset, image, method, psnr, ssim")
    p.add_argument("--ci", choices=("t", "normal"), default="t", help="MOS confidence interval")
    p.add_argument(
        "--pairing",
        choices=("rater_image", "rater", "none"),
        default="rater_image",
        help="pairing unit of significance.csv",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG figures")
    a = p.parse_args(argv)
    try:
        votes = _read(a.votes, "votes")
        objective = _read(a.objective, "objective") if a.objective else None
        files = write_report(
            votes,
            a.out,
            objective=objective,
            ci=a.ci,
            pairing=a.pairing,
            plots_enabled=not a.no_plots,
        )
    except (VotesError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
