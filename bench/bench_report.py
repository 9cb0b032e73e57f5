"""Wall time of one live-report refresh of a paper-size campaign (the admin's report page).

Simulated paper-profile raters on the SRGAN paper's design (26 raters x 1,128 stimuli, as
bench_analysis), objective metrics as a campaign has them, methods in the paper's order. When a
vote has arrived since the page's version, the page's poll recomputes:

- tables: ``write_report`` without figures or download-only files, the page's rounded tables
  and the fragment's HTML (what ``<pk>/report/fragment/`` does after the vote frame is read);
- figures: the three SVG figures and their HTML (``<pk>/report/figures/``, fetched alongside);
- together: both at once in two worker processes, as the page asks for them and gunicorn's
  workers serve them (the wall time until the page has new tables and new figures);
- before (for comparison): the report as the page computed it before, every file and figure
  in PNG and SVG.

Since the report cache (study.reports.live), a cpu worker does this work after a vote and the
page reads the result from the database (bench/bench_live_report.py measures the page); a poll
that finds no new vote costs one aggregate query and one row.

    python bench/bench_report.py [--repeat 3]

Prints figures; never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SRMOS_DATA_DIR", tempfile.mkdtemp(prefix="bench-report-"))
    import django

    django.setup()


def paper_campaign():
    """The votes, objective metrics and method order of a paper-size campaign."""
    import numpy as np

    from study.analysis import paper_design, simulate_votes

    design = paper_design()
    votes = simulate_votes(design, n_raters=26, seed=0, retest=10)
    obj = design.copy()
    rng = np.random.default_rng(0)
    obj["psnr"] = np.where(obj["method"] == "hr", np.inf, rng.normal(27, 2, len(obj)))
    obj["ssim"] = np.where(obj["method"] == "hr", 1.0, rng.uniform(0.6, 0.9, len(obj)))
    # A campaign's default metric panel beside them (random too: the fits' worst case).
    obj["gmsd"] = np.where(obj["method"] == "hr", 0.0, rng.uniform(0.05, 0.25, len(obj)))
    obj["haarpsi"] = np.where(obj["method"] == "hr", 1.0, rng.uniform(0.4, 0.9, len(obj)))
    order = list(dict.fromkeys(design["method"]))  # paper_design lists them in the paper's order
    return votes, obj, order


def render(block: str, context: dict) -> str:
    from django.template.loader import render_to_string

    from study.models import Campaign
    from study.reports.admin import REPORT_TEMPLATE, fragment_base

    campaign = Campaign(pk=1, name="paper-size", scale=4)
    full = {"campaign": campaign, "live": True, "version": "bench", **context}
    return render_to_string(REPORT_TEMPLATE, {**full, "base_template": fragment_base(block)})


def tables(votes, obj, order) -> dict[str, float]:
    from study.analysis import write_report
    from study.reports import page

    t0 = time.perf_counter()
    tables = {}
    write_report(votes, None, objective=obj, method_order=order, tables=tables)
    t1 = time.perf_counter()
    context = page.context_from_tables(tables)
    t2 = time.perf_counter()
    html = render("report_body", context)
    t3 = time.perf_counter()
    return {"analysis": t1 - t0, "page tables": t2 - t1, "html": t3 - t2, "kB": len(html) / 1e3}


def figures(votes, obj, order) -> dict[str, float]:
    from study.analysis import draw_figures
    from study.reports import page

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = draw_figures(votes, tmp, objective=obj, method_order=order, formats=("svg",))
        plots = page.plots_from_files(paths)
    t1 = time.perf_counter()
    html = render("report_figures", {"plots": plots})
    return {"draw": t1 - t0, "html": time.perf_counter() - t1, "kB": len(html) / 1e3}


def before(votes, obj, order) -> dict[str, float]:
    from study.analysis import write_report

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_report(votes, tmp, objective=obj, method_order=order)
    return {"everything": time.perf_counter() - t0}


def breakdown(votes, obj, order) -> dict[str, float]:
    """The tables' analysis step by step (what dominates a refresh)."""
    from study.analysis import report as r_
    from study.analysis.mos import summarize
    from study.analysis.objective import objective_correlation
    from study.analysis.paper_tests import friedman, pairwise_tests
    from study.analysis.power import power_table
    from study.analysis.reliability import reliability_table

    out: dict[str, float] = {}

    def clock(label, f, *args, **kwargs):
        t0 = time.perf_counter()
        value = f(*args, **kwargs)
        out[label] = time.perf_counter() - t0
        return value

    v = clock("validate", r_.validate_votes, votes)
    r = v[v["kind"] == "rating"].reset_index(drop=True)
    clock("mos", summarize, r, ("dataset", "method"), "t", order)
    stim = clock("mos per stimulus", summarize, r, ("dataset", "image", "method"), "t", order)
    with tempfile.TemporaryDirectory() as tmp:
        clock(
            "raters (+P.910)", r_._write_raters, lambda n, df: df.to_csv(Path(tmp) / n), v, r, "t"
        )
    clock("significance", pairwise_tests, r, method_order=order)
    clock("friedman", friedman, r)
    clock("reliability", reliability_table, r)
    clock("power", power_table, r)
    clock("correlation", objective_correlation, stim, r_.validate_objective(obj))
    return out


_POOL_DATA = None


def _pool_init():
    global _POOL_DATA
    setup_django()
    _POOL_DATA = paper_campaign()
    tables(*_POOL_DATA)
    figures(*_POOL_DATA)


def _pool_step(name):
    return {"tables": tables, "figures": figures}[name](*_POOL_DATA)


def together(pool) -> dict[str, float]:
    t0 = time.perf_counter()
    list(pool.map(_pool_step, ["tables", "figures"]))
    return {"tables and figures": time.perf_counter() - t0}


def line(label: str, runs: list[dict[str, float]]) -> str:
    parts = []
    for key in runs[0]:
        values = [run[key] for run in runs]
        if key == "kB":
            parts.append(f"{values[0]:.0f} kB of HTML")
        else:
            parts.append(f"{key} {statistics.median(values):.2f} s")
    total = statistics.median(sum(v for k, v in run.items() if k != "kB") for run in runs)
    return f"{label}: {total:.2f} s median of {len(runs)} ({', '.join(parts)})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    setup_django()
    votes, obj, order = paper_campaign()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}; "
        f"{votes['rater'].nunique()} raters, {len(votes):,} votes, 1,128 stimuli"
    )
    # Warm-up: imports (matplotlib, scipy) and first calls, paid once by a web process.
    tables(votes, obj, order)
    figures(votes, obj, order)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, initializer=_pool_init) as pool:
        list(pool.map(_pool_step, ["tables", "figures"]))  # both workers warm
        runs = [together(pool) for _ in range(a.repeat)]
    print(line("refresh as the page does it (two processes at once)", runs), flush=True)
    for label, step in (
        ("refresh, tables (fragment/)", tables),
        ("refresh, figures (figures/)", figures),
        ("before: whole report per refresh", before),
        ("tables' analysis, step by step", breakdown),
    ):
        runs = [step(votes, obj, order) for _ in range(a.repeat)]
        print(line(label, runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
